"""The course's own rules for chapters, checked on the MyST sources and the built site."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, toc_chapters

CHAPTERS = toc_chapters()
HTML = Path(os.environ.get("COMPANION_SITE", ROOT / "_build" / "html"))


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_follows_the_course_rules(source: Path):
    text = source.read_text(encoding="utf-8")
    exercises = re.findall(r"^`{3,}\{exercise\}", text, flags=re.M)
    solutions = re.findall(r"^`{3,}\{solution\}[^\n]*\n(?::label:[^\n]*\n)?:class: dropdown", text, flags=re.M)
    assert len(exercises) >= 3, f"{source.name}: {len(exercises)} exercises, at least 3 expected"
    assert len(solutions) == len(exercises), f"{source.name}: every solution must be a hidden dropdown"
    assert "companion.exercises" in text, f"{source.name}: exercises need companion.exercises self-checks"
    assert re.search(r"^\s*assert ", text, flags=re.M), f"{source.name}: the headline result must be asserted"
    assert re.search(r"[\uac00-\ud7a3]", text), f"{source.name}: the Korean title of the topic is missing"
    assert "tqdm.auto" not in text and "tqdm.notebook" not in text, "widget progress bars fetch scripts from a CDN"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_title_is_english_then_korean(source: Path):
    title = next(line for line in source.read_text(encoding="utf-8").splitlines() if line.startswith("# "))
    assert re.fullmatch(r"# [^\uac00-\ud7a3]+ \([^()]*[\uac00-\ud7a3][^()]*\)", title), (
        f"{source.name}: the title must read 'English (한국어)', not {title!r}")


def test_toc_has_one_part_per_written_topic():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        assert part["chapters"], f"part {part['caption']!r} is empty"


@pytest.mark.skipif(not HTML.exists(), reason="the book is not built (python3 make.py book)")
def test_math_is_served_by_the_site_itself():
    # An offline reader must see rendered math, so MathJax must come from _static, never a CDN.
    pages = [p for p in HTML.rglob("*.html") if 'class="math' in p.read_text(encoding="utf-8")]
    assert pages, "no built page contains math"
    for page in pages:
        html = page.read_text(encoding="utf-8")
        scripts = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', html, flags=re.I)
        assert scripts, f"{page.name} has math but loads no MathJax"
        assert all("_static/mathjax" in s and "://" not in s for s in scripts), f"{page.name}: {scripts}"


def built(page: str) -> str:
    return (HTML / page).read_text(encoding="utf-8")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def test_glossary_source_has_no_authoring_note():
    text = (ROOT / "book" / "appendix" / "glossary.md").read_text(encoding="utf-8")
    assert "{term}" not in text, "the glossary page tells readers about authoring roles"
    assert re.search(r"```\{glossary\}\n:sorted:", text), "the glossary must be sorted by Sphinx (:sorted:)"


@pytest.mark.skipif(not HTML.exists(), reason="the book is not built (python3 make.py book)")
def test_glossary_is_alphabetical():
    terms = [text_of(t) for t in re.findall(r'<dt id="term-[^"]*">(.*?)<', built("book/appendix/glossary.html"))]
    assert len(terms) > 10 and terms == sorted(terms, key=str.lower), terms


@pytest.mark.skipif(not HTML.exists(), reason="the book is not built (python3 make.py book)")
def test_citations_show_their_bibliography_labels():
    references = built("book/appendix/references.html")
    labels = dict(re.findall(r'<div class="citation" id="([^"]+)"[^>]*>\s*<span class="label">'
                             r'<span class="fn-bracket">\[</span>(.*?)<span class="fn-bracket">', references))
    assert labels and all(re.search(r", \d{4}[a-z]?$", label) for label in labels.values()), labels
    cited = 0
    for page in HTML.rglob("*.html"):
        for anchor, inner in re.findall(r'href="[^"]*references\.html#([^"]+)"[^>]*>(.*?)</a>',
                                        page.read_text(encoding="utf-8")):
            if anchor in labels:
                cited += 1
                assert text_of(inner) in labels[anchor], f"{page.name}: [{text_of(inner)}] vs [{labels[anchor]}]"
    assert cited, "no page cites the bibliography"


@pytest.mark.skipif(not HTML.exists(), reason="the book is not built (python3 make.py book)")
def test_no_repository_or_launch_buttons_while_the_url_is_a_placeholder():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "colab_url" not in config.get("launch_buttons", {}), "Colab cannot open the MyST chapters"
    if config["repository"]["url"].rstrip("/") != "https://github.com/OWNER/REPOSITORY":
        pytest.skip("the repository is named: its buttons are expected")
    for page in HTML.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for marker in ("github.com/OWNER", "mybinder.org", "colab.research", "repository-button", "issues-button"):
            assert marker not in html, f"{page.relative_to(HTML)} shows {marker}"


GLUED = HTML.parent / "jupyter_execute"  # every page's glued values, `<page>.glue.json`, from the last build


@pytest.mark.skipif(not GLUED.exists(), reason="the book is not built (python3 make.py book)")
def test_glued_numbers_are_plain_python_numbers():
    """A numpy scalar is glued as ``np.float64(...)``, which a ``{glue:text}`` format such as ``:.2f`` cannot
    parse: the page shows nothing where the number belongs, and the build does not warn."""
    bad = []
    for path in GLUED.rglob("*.glue.json"):
        for name, output in json.loads(path.read_text(encoding="utf-8")).items():
            plain = "".join(output.get("data", {}).get("text/plain", ""))
            if re.match(r"np\.\w+\(", plain):
                bad.append(f"{path.name}: {name} = {plain}")
    assert not bad, f"glue these as float(...) or int(...): {bad}"
