"""Turn an executed MyST notebook into one a reader can open in Jupyter and read as the website reads.

Jupyter renders plain Markdown only, so MyST's roles and directives would show as raw text. Here:

- ``{glue:text}`key:fmt``` and the other glue roles become the glued value, formatted as MyST-NB formats it;
  ``{glue:figure}`` and ``{glue}`` directives become the glued image (a cell attachment) with its caption;
- an ``{exercise}`` becomes a bold "Exercise N" statement, a ``{solution}`` a ``<details>`` block that stays
  closed until the reader opens it;
- admonitions become block quotes, ``{math}`` display math, citations their author-year label, and other roles
  (``{term}``, ``{doc}``, ``{ref}``) their text; MyST targets and comments are dropped.

Code cells and their outputs are kept as executed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping

FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):[ \t]*(?P<value>.*)$")
ROLE = re.compile(r"\{(?P<name>[\w:-]*)\}`(?P<body>[^`]*)`")
ADMONITIONS = {"note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important", "warning": "Warning",
               "caution": "Caution", "attention": "Attention", "danger": "Danger", "error": "Error",
               "seealso": "See also"}


class Converter:
    def __init__(self, glue: Mapping[str, dict], citations: Mapping[str, str]):
        self.glue = glue
        self.citations = citations
        self.exercises: dict[str, int] = {}
        self.figures = 0
        self.attachments: dict[str, dict] = {}

    # -- roles ---------------------------------------------------------------------------------------------
    def glue_text(self, body: str, kind: str) -> str:
        key, _, spec = body.partition(":")
        value = self.glue.get(key.strip())
        if value is None:
            return f"`{key}`"
        data = value.get("data", {})
        if kind == "md" and "text/markdown" in data:
            return "".join(data["text/markdown"])
        text = "".join(data.get("text/plain", "")).strip("'")
        if spec:
            try:
                text = f"{float(text):>{spec}}"
            except ValueError:
                pass
        return text

    def role(self, match: re.Match) -> str:
        name, body = match["name"], match["body"]
        if name.startswith("glue"):
            return self.glue_text(body, name.partition(":")[2])
        if name.startswith("cite"):
            labels = [self.citations.get(key.strip(), key.strip()) for key in body.split(",")]
            return "[" + "; ".join(labels) + "]"
        if name == "math":
            return f"${body}$"
        if name == "eq":
            return f"({body})"
        explicit = re.match(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", body, flags=re.S)
        if explicit and explicit["text"]:
            return explicit["text"]
        if name == "term":
            return f"*{body}*"
        if name in {"doc", "ref", "numref", "download"}:
            return f"`{body.split('/')[-1]}`"
        return body

    def roles(self, text: str) -> str:
        return ROLE.sub(self.role, text)

    # -- directives ----------------------------------------------------------------------------------------
    def markdown(self, text: str) -> str:
        lines = text.split("\n")
        out: list[str] = []
        index = 0
        while index < len(lines):
            line = lines[index]
            match = FENCE.match(line)
            if not match:
                if re.match(r"^\([\w.:-]+\)=\s*$", line) or re.match(r"^%", line):
                    index += 1
                    continue  # a MyST target or comment
                out.append(line)
                index += 1
                continue
            fence = match["fence"]
            close = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$")
            end = index + 1
            while end < len(lines) and not close.match(lines[end]):
                end += 1
            body = lines[index + 1:end]
            options: dict[str, str] = {}
            while body and OPTION.match(body[0]):
                option = OPTION.match(body[0])
                options[option["key"]] = option["value"].strip()
                body = body[1:]
            out.extend(self.directive(match["name"], match["arg"].strip(), options, "\n".join(body).strip("\n")))
            index = end + 1
        return self.roles("\n".join(out))

    def directive(self, name: str, arg: str, options: dict, body: str) -> list[str]:
        if name == "exercise":
            number = len(self.exercises) + 1
            self.exercises[options.get("label", f"#{number}")] = number
            title = f"**Exercise {number}**" + (f" ({self.roles(arg)})" if arg else "")
            return [title, "", self.markdown(body), ""]
        if name == "solution":
            number = self.exercises.get(arg)
            summary = f"Solution to Exercise {number}" if number else "Solution"
            return ["<details>", f"<summary>{summary}</summary>", "", self.markdown(body), "", "</details>", ""]
        if name in {"glue:figure", "glue", "glue:any"}:
            return self.glued_figure(arg, body)
        if name == "math":
            return ["$$", body, "$$"]
        if name in ADMONITIONS or name == "admonition":
            title = ADMONITIONS.get(name) or self.roles(arg)
            if "dropdown" in options.get("class", ""):  # hidden on the page: folded here too
                return ["<details>", f"<summary>{title}</summary>", "", self.markdown(body), "", "</details>", ""]
            inner = self.markdown(body).split("\n")
            return [f"> **{title}**", ">"] + [f"> {line}".rstrip() for line in inner] + [""]
        if name in {"figure", "image"}:
            self.figures += name == "figure"
            caption = self.markdown(body)
            label = f"**Figure {self.figures}.** " if name == "figure" else ""
            return [f"![{options.get('alt', '')}]({arg})", "", f"{label}{caption}".strip(), ""]
        if name in {"code-block", "code", "sourcecode"}:
            return [f"```{arg}", body, "```"]
        return [self.markdown(body), ""]

    def glued_figure(self, key: str, caption: str) -> list[str]:
        value = self.glue.get(key, {})
        data = value.get("data", {})
        for mime, suffix in (("image/png", "png"), ("image/jpeg", "jpg"), ("image/svg+xml", "svg")):
            if mime in data:
                name = f"{key}.{suffix}"
                self.attachments[name] = {mime: data[mime]}
                lines = [f"![{key}](attachment:{name})", ""]
                break
        else:
            lines = ["```", "".join(data.get("text/plain", key)), "```", ""]
        if caption:
            self.figures += 1
            lines += [f"**Figure {self.figures}.** {self.markdown(caption)}", ""]
        return lines


def reader_notebook(notebook: dict, glue: Mapping[str, dict], citations: Mapping[str, str] | None = None) -> dict:
    """A copy of ``notebook`` whose Markdown cells read in Jupyter as the page reads on the website."""
    result = copy.deepcopy(notebook)
    for key in ("jupytext", "source_map"):  # they describe the MyST source, not this notebook
        result["metadata"].pop(key, None)
    converter = Converter(glue, citations or {})
    for cell in result["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        converter.attachments = {}
        cell["source"] = re.sub(r"\n{3,}", "\n\n", converter.markdown(source)).strip("\n")
        if converter.attachments:
            cell["attachments"] = converter.attachments
    return result
