"""The import boundary between the SDK and the emulator (issue 9, item 1).

The emulator is an independent reading of the vendor documents: a rule the
SDK misread must not pass on both sides.  So:

(a) The SDK (every module of ``avatarkit/`` outside ``avatarkit/emulator/``)
    imports nothing from ``avatarkit.emulator`` — at module level or inside a
    function — with one exception: ``avatarkit/cli.py`` may import the
    emulator *inside the functions* of the commands that run it
    (``avatarkit emulator``, ``avatarkit demo`` and the ``--emulator`` flags).
    The CLI is a program on top of both; importing ``avatarkit`` or
    ``avatarkit.cli`` loads no emulator module.
(b) Modules under ``avatarkit/emulator/`` import from the SDK only
    :data:`ALLOWED_SDK`: the wire format (the frame codec and what it decodes
    to, the wire-struct modules whose structs carry no rule) and generic
    utilities.  Never rules, catalogs or defaults.  Two places may import
    more, lazily (inside a function): the convenience methods that build an
    SDK client pointed at the emulator (:data:`LAZY_CLIENTS`), and the demo
    (``avatarkit/emulator/demo.py``), a program that uses the SDK against the
    emulator like any user's program; nothing in the emulator imports the demo.

Imports are read with :mod:`ast`: ``import``/``from … import`` anywhere in the
module, and ``importlib.import_module("…")`` / ``__import__("…")`` with a
literal name.  An import under ``if TYPE_CHECKING:`` never runs and counts as
lazy (it is still judged: only the lazy exceptions above may use it).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent / "avatarkit"

#: What emulator modules may import from the SDK (modules and their submodules).
ALLOWED_SDK: Final = (
    "avatarkit.tta.frames",
    "avatarkit.tta.events",
    "avatarkit.digime._wire",
    "avatarkit.voice._wire",
    "avatarkit.metastudio._wire",
    "avatarkit.errors",
    "avatarkit._redact",
    "avatarkit._schema_errors",
    "avatarkit._host",  # a task group that can be closed from another task: no rule in it
)
#: Lazy (function-level) imports of SDK clients by the emulator's convenience methods.
LAZY_CLIENTS: Final = {
    "avatarkit/emulator/server.py": ("avatarkit._session", "avatarkit.metastudio.client"),
    "avatarkit/emulator/process.py": ("avatarkit._session",),
}
#: The demo: an SDK program; lazily or not, it may import the SDK.
DEMO: Final = "avatarkit/emulator/demo.py"
#: The SDK modules that may import the emulator, lazily, inside functions.
LAZY_EMULATOR_USERS: Final = ("avatarkit/cli.py",)


@dataclass(frozen=True)
class Import:
    module: str  # the module it names, absolute
    line: int
    lazy: bool  # inside a function (not run at import time)

    def under(self, *prefixes: str) -> bool:
        return any(self.module == p or self.module.startswith(p + ".") for p in prefixes)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _absolute(module: str | None, level: int, here: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = here.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_of(path: Path, name: str | None = None) -> list[Import]:
    """Every import in the module at ``path`` (see the module doc); ``name`` is its
    dotted name (default: from its place under ``avatarkit/``)."""
    tree = ast.parse(path.read_text(), str(path))
    here = name or _module_name(path)
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = True  # never run: for the type checker only
            if isinstance(child, ast.Import):
                found.extend(Import(a.name, child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _absolute(child.module, child.level, here, is_package)
                for alias in child.names:
                    # ``from avatarkit.tta import frames`` imports the submodule frames;
                    # ``from avatarkit.tta.config import x`` imports the module config.
                    sub = f"{base}.{alias.name}"
                    found.append(Import(sub if _is_module(sub) else base, child.lineno, lazy))
            elif isinstance(child, ast.Call):
                func = child.func
                name = (
                    func.attr
                    if isinstance(func, ast.Attribute)
                    else func.id
                    if isinstance(func, ast.Name)
                    else ""
                )
                if (
                    name in ("import_module", "__import__")
                    and child.args
                    and isinstance(child.args[0], ast.Constant)
                    and isinstance(child.args[0].value, str)
                ):
                    found.append(Import(child.args[0].value, child.lineno, lazy))
            visit(child, inner)

    visit(tree, False)
    return found


def _modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT.parent))


def sdk_offenders() -> list[str]:
    """(a): SDK modules importing the emulator (where not allowed)."""
    bad = []
    for path in _modules():
        rel = _rel(path)
        if rel.startswith("avatarkit/emulator/"):
            continue
        for imp in imports_of(path):
            if not imp.under("avatarkit.emulator"):
                continue
            if rel in LAZY_EMULATOR_USERS and imp.lazy:
                continue
            bad.append(
                f"{rel}:{imp.line} imports {imp.module}" + ("" if imp.lazy else " (module level)")
            )
    return bad


def _emulator_module_offenders(rel: str, found: list[Import]) -> list[str]:
    bad = []
    for imp in found:
        if imp.under("avatarkit.emulator.demo"):
            bad.append(f"{rel}:{imp.line} imports the demo")
        if not imp.under("avatarkit") or imp.under("avatarkit.emulator"):
            continue
        if imp.module == "avatarkit":  # ``from avatarkit import x`` is judged by x
            continue
        if imp.under(*ALLOWED_SDK):
            continue
        if imp.lazy and imp.under(*LAZY_CLIENTS.get(rel, ())):
            continue
        bad.append(f"{rel}:{imp.line} imports {imp.module}")
    return bad


def emulator_offenders() -> list[str]:
    """(b): emulator modules importing SDK modules outside the allow-list."""
    bad = []
    for path in _modules():
        rel = _rel(path)
        if rel.startswith("avatarkit/emulator/") and rel != DEMO:
            bad += _emulator_module_offenders(rel, imports_of(path))
    return bad


def test_the_sdk_imports_nothing_from_the_emulator() -> None:
    assert sdk_offenders() == []


def test_the_emulator_imports_only_the_wire_format_from_the_sdk() -> None:
    assert emulator_offenders() == []


def test_importing_the_sdk_or_its_cli_loads_no_emulator_module() -> None:
    code = (
        "import sys, avatarkit, avatarkit.cli\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('avatarkit.emulator'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The parser itself: module-level, lazy, relative and importlib imports."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import avatarkit.tta.config\n"
        "from ..voice import rules\n"
        "from . import routes\n"
        "from avatarkit.tta.frames import encode\n"
        "import importlib\n"
        "def f():\n"
        "    from avatarkit._session import AvatarSession\n"
        "    importlib.import_module('avatarkit.tta.ssml')\n"
        "    from avatarkit.emulator import demo\n"
    )
    found = imports_of(probe, "avatarkit.emulator.probe")
    seen = {(i.module, i.lazy) for i in found}
    assert ("avatarkit.tta.config", False) in seen
    assert ("avatarkit.voice.rules", False) in seen
    assert ("avatarkit.emulator.routes", False) in seen
    assert ("avatarkit._session", True) in seen
    assert ("avatarkit.tta.ssml", True) in seen
    offenders = _emulator_module_offenders("avatarkit/emulator/probe.py", found)
    assert [o.split(" imports ")[1] for o in offenders] == [
        "avatarkit.tta.config",
        "avatarkit.voice.rules",
        "avatarkit._session",
        "avatarkit.tta.ssml",
        "the demo",
    ]
    # The same lazy client import is allowed where a convenience method needs it.
    lazy = [i for i in found if i.module.startswith("avatarkit._session")]
    assert _emulator_module_offenders("avatarkit/emulator/server.py", lazy) == []
