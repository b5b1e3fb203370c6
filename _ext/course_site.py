"""The course site's small Sphinx extension: what the theme and the other extensions have no setting for.

- Repository buttons: `_config.yml`'s `repository.url` is the one place the repository is named. While it is the
  placeholder, no repository, issues or launch button is rendered (they would lead nowhere).
- Figure, table and exercise numbers restart in every chapter (Sphinx numbers them across the whole book unless
  the table of contents is numbered).
- Each script once per page: Sphinx 7.4 adds an inline script registered after the builder started twice (fixed in
  Sphinx 8.2, sphinx-doc/sphinx#13402, which Jupyter Book 1 cannot use), so sphinx-thebe's
  `const THEBE_JS_URL` was declared twice and every page logged a SyntaxError.
- Bibliography labels in author-year form ("Kitaev et al., 2020"), the same text the in-text citations show.
- A ``{benchmark-results}`` directive: the last figures each benchmark script wrote to
  `benchmarks/results/*.json` (the page is rebuilt when they change).
- Each chapter's `.ipynb` download is a notebook for readers (see `reader_notebook.py`): glued values
  substituted, exercises as formatted statements, solutions in `<details>` blocks.
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from reader_notebook import reader_notebook
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util.docutils import SphinxDirective

PLACEHOLDER = "https://github.com/OWNER/REPOSITORY"


# -- repository and launch buttons ---------------------------------------------------------------------------
def hide_placeholder_buttons(app: Sphinx, config: Config) -> None:
    options = config.html_theme_options
    url = (options.get("repository_url") or "").rstrip("/")
    if url and url != PLACEHOLDER:
        return
    for key in ("use_repository_button", "use_issues_button", "use_edit_page_button", "use_source_button"):
        options[key] = False
    options["launch_buttons"] = {}
    options["repository_url"] = ""
    # sphinx-book-theme reads the repository from html_context too.
    config.html_context = {k: v for k, v in config.html_context.items() if not k.startswith("github_")}


# -- figure and exercise numbers per chapter ------------------------------------------------------------------
def number_per_chapter(app: Sphinx, env) -> list[str]:
    """Figures, tables and exercises numbered 1, 2, ... in each chapter, as a reader of one chapter expects."""
    for figures in env.toc_fignumbers.values():
        for numbers in figures.values():
            if not numbers or any(len(n) != 1 for n in numbers.values()):
                continue  # a numbered table of contents already gives chapter prefixes
            for index, key in enumerate(sorted(numbers, key=numbers.get), start=1):
                numbers[key] = (index,)
    return []


# -- each script once ---------------------------------------------------------------------------------------
def drop_duplicate_scripts(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        if not hasattr(script, "attributes"):
            unique.append(script)
            continue
        key = (script.filename or "", tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


# -- author-year bibliography labels -------------------------------------------------------------------------
class AuthorYearLabels(BaseLabelStyle):
    """Labels such as "Sennrich et al., 2016", "Holtzman and Buys, 2020"; a, b, ... where two would clash."""

    def format_labels(self, sorted_entries):
        labels = [self.label(entry) for entry in sorted_entries]
        for index, label in enumerate(labels):
            same = [i for i, other in enumerate(labels) if other == label]
            yield label if len(same) == 1 else f"{label}{'abcdefghij'[same.index(index)]}"

    @staticmethod
    def label(entry) -> str:
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [" ".join(p.prelast_names + p.last_names) for p in people]
        if not names:
            who = entry.fields.get("organization") or entry.fields.get("title", "Anon.")
        elif len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        who = who.replace("{", "").replace("}", "")
        return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(UnsrtStyle):
    default_label_style = "course-author-year"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "course-author-year", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "course-author-year", AuthorYearStyle)


# -- benchmark results ---------------------------------------------------------------------------------------
class BenchmarkResults(SphinxDirective):
    """The last measured figures of every benchmark, from benchmarks/results/*.json."""

    def run(self) -> list[nodes.Node]:
        folder = Path(self.env.app.confdir) / "benchmarks" / "results"
        self.env.note_dependency(str(folder))
        lines: list[str] = []
        for path in sorted(folder.glob("*.json")):
            self.env.note_dependency(str(path))
            data = json.loads(path.read_text(encoding="utf-8"))
            machine = data["machine"]
            verdict = {True: "every target met", False: "**a target missed**", None: "measured, no targets"}
            lines += [f"**`benchmarks/{data['benchmark']}.py`**, measured {data['date'][:10]} on {machine['cpu']} "
                      f"({machine['cores']} cores, {machine['system']}), Python {data['python']}, torch "
                      f"{data['torch']}, {data['threads']} thread(s): {verdict[data['passed']]}.", ""]
            if data["checks"]:
                lines += ["| check: measured (target) | verdict |", "|---|---|"]
                lines += [f"| {' '.join(c['check'].split()).replace('|', '/')} | {'PASS' if c['pass'] else 'FAIL'} |"
                          for c in data["checks"]]
            else:
                lines += ["```text", *data["report"], "```"]
            lines.append("")
        if not lines:
            lines = ["No benchmark has recorded results yet: run the scripts above."]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=str(folder)), self.content_offset, container)
        return container.children


# -- the reader's notebook behind the .ipynb download --------------------------------------------------------
def executed_notebook(app: Sphinx, docname: str) -> Path:
    return Path(app.outdir).parent / "jupyter_execute" / f"{docname}.ipynb"


def offer_reader_notebook(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    if executed_notebook(app, pagename).exists():
        context["ipynb_source"] = f"{pagename}.ipynb"


def citation_labels(app: Sphinx) -> dict[str, str]:
    """Each bibliography key's author-year label, as the site shows it."""
    from pybtex.database import parse_file

    entries = {}
    for name in app.config.bibtex_bibfiles:
        entries.update(parse_file(str(Path(app.srcdir) / name)).entries)
    ordered = sorted(entries.items(), key=lambda item: AuthorYearLabels.label(item[1]))
    labels = AuthorYearLabels().format_labels([entry for _, entry in ordered])
    return {key: label for (key, _), label in zip(ordered, labels, strict=True)}


def write_reader_notebooks(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    citations = citation_labels(app)
    for docname in app.env.found_docs:
        source = executed_notebook(app, docname)
        if not source.exists():
            continue
        glue = source.with_suffix(".glue.json")
        values = json.loads(glue.read_text(encoding="utf-8")) if glue.exists() else {}
        notebook = json.loads(source.read_text(encoding="utf-8"))
        target = Path(app.outdir) / "_sources" / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(reader_notebook(notebook, values, citations), ensure_ascii=False, indent=1) + "\n",
                          encoding="utf-8")


def setup(app: Sphinx) -> dict:
    app.add_directive("benchmark-results", BenchmarkResults)
    app.connect("config-inited", hide_placeholder_buttons, priority=900)
    app.connect("env-get-updated", number_per_chapter, priority=900)
    app.connect("html-page-context", offer_reader_notebook, priority=400)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    app.connect("build-finished", write_reader_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
