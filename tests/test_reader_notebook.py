"""The reader's notebook behind each page's .ipynb download (_ext/reader_notebook.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
from reader_notebook import reader_notebook  # noqa: E402

SOURCE = """Over {glue:text}`n` positions the median is {glue:text}`median:.1f`, see {cite}`kitaev2020reformer`
and the {term}`nucleus <Nucleus sampling>`.

(sec-x)=
```{glue:figure} fig
:name: fig-x

The caption.
```

## Exercises

````{exercise} By hand
:label: ex-one

Compute {glue:text}`n`.
````

````{solution} ex-one
:class: dropdown

It is 12.

```python
print(12)
```
````

```{admonition} A hint
:class: dropdown

Count them.
```
"""


def glue(text: str, **data) -> dict:
    return {"output_type": "display_data", "data": {"text/plain": text, **data}, "metadata": {}}


def test_glue_exercises_and_solutions_read_as_the_page_does():
    notebook = {"cells": [{"cell_type": "markdown", "source": SOURCE, "metadata": {}},
                          {"cell_type": "code", "source": "x = 1", "outputs": [], "metadata": {}}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    values = {"n": glue("12"), "median": glue("3.14159"), "fig": glue("<Figure>", **{"image/png": "iVBOR"})}
    result = reader_notebook(notebook, values, {"kitaev2020reformer": "Kitaev et al., 2020"})
    cell = result["cells"][0]
    text = cell["source"]
    assert "Over 12 positions the median is 3.1, see [Kitaev et al., 2020]" in text
    assert "the nucleus." in text and "(sec-x)=" not in text
    assert "![fig](attachment:fig.png)" in text and cell["attachments"] == {"fig.png": {"image/png": "iVBOR"}}
    assert "**Figure 1.** The caption." in text
    assert "**Exercise 1** (By hand)\n\nCompute 12." in text
    assert "<details>\n<summary>Solution to Exercise 1</summary>\n\nIt is 12.\n\n```python\nprint(12)\n```" in text
    assert "<details>\n<summary>A hint</summary>\n\nCount them.\n\n</details>" in text
    assert "{" not in text.replace("{glue", "")  # no MyST role or directive left
    assert ":label:" not in text and ":class:" not in text
    assert result["cells"][1] == notebook["cells"][1]
    assert notebook["cells"][0]["source"] == SOURCE  # the input is not modified


SOURCES = Path(os.environ.get("COMPANION_SITE", ROOT / "_build" / "html")) / "_sources" / "book"


@pytest.mark.skipif(not SOURCES.exists(), reason="the book is not built (python3 make.py book)")
def test_built_downloads_are_reader_notebooks():
    notebooks = sorted(SOURCES.rglob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        assert "{glue" not in text and "{exercise}" not in text and "{solution}" not in text, path.name
        if "**Exercise 1**" in text:
            assert text.count("<details>") == text.count("</details>") >= text.count("**Exercise ") >= 3, path.name
