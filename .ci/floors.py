"""Print pip constraints pinning every runtime dependency to its declared floor.

Reads ``pyproject.toml``: the dependencies, the extras users install
(``emulator``, ``media``, ``speed``, ``ray``) and the docs build (``docs``).  Each
``name>=X`` becomes ``name==X`` (its environment marker kept), so
``pip install -c`` with this output installs the lowest versions the project
claims to work with.  A requirement without a floor is an error: every
dependency must state one.

    python .ci/floors.py > floors.txt
    python .ci/floors.py --check    # in the venv installed with them: each floor holds

``--check`` fails unless every pinned package is installed at exactly its floor,
so that a resolver that quietly picked another version cannot pass as the floors.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

EXTRAS = ("emulator", "media", "speed", "docs", "ray")
_REQ = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(?P<spec>[^;]*)(?P<marker>;.*)?$")


def floors(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in EXTRAS:
        requirements += project["optional-dependencies"][extra]
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = _REQ.match(requirement.strip())
        if match is None:
            raise SystemExit(f"cannot read the requirement {requirement!r}")
        name = match["name"].lower()
        if name == project["name"]:
            continue  # a self-reference (avatarkit[...]): its own requirements are listed
        floor = re.search(r">=\s*([0-9][^,\s]*)", match["spec"])
        if floor is None:
            raise SystemExit(f"{requirement!r} states no floor (>=): every dependency must")
        pin = f"{name}=={floor[1]}{match['marker'] or ''}"
        if pins.setdefault(name, pin) != pin:
            raise SystemExit(f"{name} has two floors: {pins[name]!r} and {pin!r}")
    return sorted(pins.values())


def check(pins: list[str]) -> list[str]:
    """The pins this environment does not hold, in words (empty when all hold)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.markers import Marker
    from packaging.version import Version

    wrong = []
    for pin in pins:
        spec, _, marker = pin.partition(";")
        if marker and not Marker(marker).evaluate():
            continue
        name, _, floor = spec.partition("==")
        try:
            installed = version(name)
        except PackageNotFoundError:
            wrong.append(f"{name}: not installed (floor {floor})")
            continue
        if Version(installed) != Version(floor):
            wrong.append(f"{name}: {installed} installed, floor {floor}")
    return wrong


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    pins = floors(root / "pyproject.toml")
    if sys.argv[1:] == ["--check"]:
        problems = check(pins)
        for problem in problems:
            print(f"floors: {problem}", file=sys.stderr)
        if problems:
            raise SystemExit(1)
        print(f"floors: all {len(pins)} pins installed at their floors")
    else:
        sys.stdout.write("".join(line + "\n" for line in pins))
