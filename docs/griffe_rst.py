"""A griffe extension: the docstrings' few reStructuredText habits, read as Markdown.

avatarkit's docstrings are Google style and read well in ``help()`` and editors;
they use RST roles (``:class:`TtaStream```) and ``::`` before a literal block.
Here a role becomes inline code and a trailing ``::`` a colon (the indented
block after it is already a Markdown code block).  A module constant documented
by ``#:`` comments above it (Sphinx's habit, which griffe does not read) gets
those comments as its docstring.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|mod|func|meth|attr|data|exc|obj|const):`~?([^`]+)`")
_LITERAL = re.compile(r"(?m)(\S)[ \t]*::$|^[ \t]*::$")


def rst_to_markdown(text: str) -> str:
    """``:class:`X``` -> ```X```; ``word::`` -> ``word:`` (a lone ``::`` line goes)."""
    text = _ROLE.sub(lambda m: f"`{m[1]}`", text)
    return _LITERAL.sub(lambda m: f"{m[1]}:" if m[1] else "", text)


@cache
def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def comment_above(path: Path, lineno: int) -> str | None:
    """The ``#:`` comment block right above line ``lineno`` (1-based), or None."""
    lines = _lines(path)
    block: list[str] = []
    index = lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        block.append(lines[index].lstrip()[2:].strip())
        index -= 1
    return " ".join(reversed(block)) or None


class RstMarkup(griffe.Extension):
    """Rewrites every docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        if attr.docstring is None and attr.lineno is not None and isinstance(attr.filepath, Path):
            text = comment_above(attr.filepath, attr.lineno)
            if text is not None:
                attr.docstring = griffe.Docstring(rst_to_markdown(text), parent=attr)
