"""The docs site (mkdocs.yml, docs/): the reference covers the public surface, and
every public symbol says what it raises and how it behaves on cancellation.

``mkdocs build --strict`` itself runs in ``.ci/run``; these tests check what a
build cannot: that nothing public is missing from the reference, and the
docstring convention, read the way mkdocstrings reads it (griffe, with the
project's extension ``docs/griffe_rst.py``).
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

griffe = pytest.importorskip("griffe")
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))
from griffe_rst import RstMarkup, comment_above, rst_to_markdown  # noqa: E402

#: The packages whose ``__all__`` is the public surface.
PUBLIC = (
    "avatarkit",
    "avatarkit.tta",
    "avatarkit.tta.events",
    "avatarkit.tta.ssml",
    "avatarkit.tta.frames",
    "avatarkit.tta.sentences",
    "avatarkit.batch",
    "avatarkit.batch.ray_engine",
    "avatarkit.digime",
    "avatarkit.voice",
    "avatarkit.metastudio",
    "avatarkit.media",
    "avatarkit.emulator",
    "avatarkit.errors",
)
PAGES = sorted(DOCS.rglob("*.md"))
DIRECTIVES = [
    (page, match[1])
    for page in PAGES
    for match in re.finditer(r"^::: (\S+)", page.read_text(encoding="utf-8"), re.M)
]


def _resolve(path: str) -> object:
    """The object a ``:::`` path names: the longest importable module, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ImportError(path)


def test_every_directive_names_an_importable_object() -> None:
    assert len(DIRECTIVES) > 50
    for page, path in DIRECTIVES:
        try:
            _resolve(path)
        except (ImportError, AttributeError) as exc:
            pytest.fail(f"{page.relative_to(ROOT)}: ::: {path} does not import ({exc})")


def test_every_public_name_is_in_the_reference() -> None:
    documented = {id(_resolve(path)) for _, path in DIRECTIVES}
    # A module documented whole documents its __all__ (mkdocstrings renders them).
    for _, path in DIRECTIVES:
        value = _resolve(path)
        if isinstance(value, ModuleType):
            documented |= {id(getattr(value, name)) for name in value.__all__}
    missing = [
        f"{package}.{name}"
        for package in PUBLIC
        for name in importlib.import_module(package).__all__
        if id(getattr(importlib.import_module(package), name)) not in documented
    ]
    assert not missing, f"public names with no ::: entry in docs/reference: {missing}"


def _nav_files(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _nav_files(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _nav_files(value)


def test_the_nav_lists_every_page_and_only_pages_that_exist() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = set(_nav_files(config["nav"]))
    on_disk = {str(page.relative_to(DOCS)) for page in PAGES}
    assert listed == on_disk
    guides = {Path(p).stem for p in listed if p.startswith("guides/")}
    assert {
        "quickstart",
        "notebooks",
        "fastapi",
        "uploads-and-training",
        "metastudio",
        "emulator",
        "errors-and-retries",
    } <= guides


def test_every_python_block_in_the_docs_parses() -> None:
    # ``python`` blocks run (tests/test_readme.py); ``py`` blocks are fragments that
    # need the reader's own context, yet must still be valid Python.
    blocks = [
        (page, block)
        for page in PAGES
        for block in re.findall(r"```py(?:thon)?\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    ]
    assert len(blocks) >= 15
    for page, block in blocks:
        try:
            compile(block, str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError as exc:
            pytest.fail(f"{page.relative_to(ROOT)}: {exc}\n{block}")


def test_the_readme_links_the_docs_and_their_build() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/index.md" in readme
    assert "mkdocs serve" in readme and "'.[docs]'" in readme


# -- the docstring convention ---------------------------------------------------------


def _awaitable(function: griffe.Function) -> bool:
    """A coroutine, or a call whose result is awaited or iterated asynchronously."""
    returns = str(function.returns or "")
    return "async" in function.labels or returns.startswith(
        ("Upload[", "AsyncIterator[", "AsyncGenerator[", "AbstractAsyncContextManager[")
    )


def _listed_in(parent: griffe.Object, name: str, kinds: set[str]) -> bool:
    """``name`` is an entry of one of ``kinds`` sections of ``parent``'s docstring."""
    if parent.docstring is None:
        return False
    return any(
        section.kind.value in kinds and any(item.name == name for item in section.value)
        for section in parent.docstring.parsed
        if isinstance(section.value, list)
    )


def _problems(obj: griffe.Object | griffe.Alias, path: str) -> Iterator[str]:
    target = obj.final_target if isinstance(obj, griffe.Alias) else obj
    where = f"{target.relative_filepath}:{target.lineno}: {path}"
    doc = target.docstring.value.strip() if target.docstring else ""
    parent = target.parent
    documented_by_parent = parent is not None and (
        _listed_in(parent, target.name, {"attributes", "parameters"})
        or (parent.is_class and any(str(b).endswith("TypedDict") for b in parent.bases))
    )
    if not doc and not documented_by_parent:
        yield f"{where}: no docstring"
    if target.is_function and "property" not in target.labels:
        if "Raises:" not in doc and "Raises nothing" not in doc:
            yield f"{where}: no Raises: section (or 'Raises nothing')"
        if _awaitable(target) and "Cancellation:" not in doc:  # type: ignore[arg-type]
            yield f"{where}: awaitable with no Cancellation: section"
    if target.is_class:
        for name, member in target.members.items():
            if not name.startswith("_"):
                yield from _problems(member, f"{path}.{name}")
    if target.is_module:
        exports = [str(name) for name in target.exports or ()]
        for name in exports or [n for n in target.members if not n.startswith("_")]:
            if name in target.members:
                yield from _problems(target.members[name], f"{path}.{name}")


def docstring_problems() -> list[str]:
    """Every convention broken, as ``file:line: object: what``."""
    loader = griffe.GriffeLoader(
        extensions=griffe.Extensions(RstMarkup()),
        search_paths=[str(ROOT)],
        docstring_parser=griffe.Parser.google,
    )
    package = loader.load("avatarkit")
    loader.resolve_aliases(implicit=False, external=False)
    seen: set[str] = set()
    problems: list[str] = []
    for _, path in DIRECTIVES:
        obj = package if path == "avatarkit" else package[path.removeprefix("avatarkit.")]
        for problem in _problems(obj, path):
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
    return problems


def test_every_public_symbol_says_what_it_raises_and_how_it_cancels() -> None:
    problems = docstring_problems()
    assert not problems, f"{len(problems)} docstrings break the convention:\n" + "\n".join(problems)


# -- the griffe extension ---------------------------------------------------------------


def test_rst_roles_become_inline_code_and_literal_markers_colons() -> None:
    assert rst_to_markdown("See :class:`TtaStream` and :meth:`~a.b.open`.") == (
        "See `TtaStream` and `a.b.open`."
    )
    assert rst_to_markdown("For example::\n\n    x = 1") == "For example:\n\n    x = 1"
    assert rst_to_markdown("Text.\n\n::\n\n    x = 1") == "Text.\n\n\n\n    x = 1"
    assert rst_to_markdown("a :: b") == "a :: b"  # only at a line's end


def test_hash_colon_comments_above_a_constant_are_its_docstring(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("x = 0\n#: The first line,\n#: and the second.\nLIMIT = 5\n\nOTHER = 1\n")
    assert comment_above(source, 4) == "The first line, and the second."
    assert comment_above(source, 6) is None
    assert comment_above(source, 1) is None


if __name__ == "__main__":  # python tests/test_docs.py: the problems, one per line
    print("\n".join(docstring_problems()) or "no problems")
