"""The SDK under a user's type checkers: what passes must pass, and what is wrong must fail.

CI also runs ``mypy --strict tests/typing`` and ``basedpyright`` (pyright, strict,
over ``tests/typing``; see pyproject.toml) in .ci/run; these tests show that
those checks can fail, and that a development install resolves for both.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TYPING = Path(__file__).parent / "typing"
EVENTS = TYPING / "exhaustive_events.py"
OPTIONS = TYPING / "options.py"
ROOT = Path(__file__).resolve().parents[1]

# Errors in the sample only (the SDK is type-checked on its own, at its own versions).
MYPY = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent"]
PYRIGHT = shutil.which("basedpyright", path=str(Path(sys.executable).parent))


def mypy(path: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MYPY, str(path)], capture_output=True, text=True, timeout=300, cwd=cwd)


def pyright(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """pyright in strict mode on one file, from ``cwd`` (a folder outside the project)."""
    assert PYRIGHT is not None, "basedpyright is in the [dev] extra"
    config = cwd / "pyrightconfig.json"
    config.write_text('{"typeCheckingMode": "strict", "pythonVersion": "3.11"}')
    return subprocess.run(
        [PYRIGHT, "--pythonpath", sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_a_match_over_every_event_type_is_exhaustive(tmp_path: Path) -> None:
    assert mypy(EVENTS).returncode == 0
    gap = tmp_path / "gap.py"
    gap.write_text(
        EVENTS.read_text().replace(
            "        case events.Unknown(header=header):\n            return header\n", ""
        )
    )
    result = mypy(gap)
    assert result.returncode == 1
    assert 'incompatible type "Unknown"; expected "Never"' in result.stdout
    result = pyright(gap, tmp_path)
    assert result.returncode == 1 and '"Unknown" is not assignable to type "Never"' in result.stdout


MISSPELT = [
    ('codec="mp4"', 'codec="mp5"', "Literal['mp5']"),
    ('"video_width": 720', '"video_widht": 720', 'Argument "video"'),
    ('role_conf={"speed": 1.2}', 'role_conf={"speed": "fast"}', 'Argument "role_conf"'),
    ("idle_timeout=20", "idle_timout=20", "idle_timout"),
    ("max_uploads=2", "max_upload=2", "max_upload"),
    ("proxy=", "proxies=", "proxies"),
    ("with_options(timeout=5.0)", 'with_options(timeout="5")', "timeout"),
]


def test_typed_options_pass_as_written(tmp_path: Path) -> None:
    result = mypy(OPTIONS)
    assert result.returncode == 0, result.stdout
    result = pyright(OPTIONS, tmp_path)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(("right", "wrong", "named"), MISSPELT)
def test_a_misspelt_option_fails_type_checking(
    right: str, wrong: str, named: str, tmp_path: Path
) -> None:
    source = OPTIONS.read_text()
    assert right in source
    sample = tmp_path / "misspelt.py"
    sample.write_text(source.replace(right, wrong, 1))
    result = mypy(sample)
    assert result.returncode == 1 and named in result.stdout, result.stdout


def test_the_development_install_resolves_for_type_checkers(tmp_path: Path) -> None:
    """From a folder outside the project, both checkers find avatarkit's own sources
    (an import-hook editable install would leave them with nothing to read)."""
    program = tmp_path / "user.py"
    program.write_text("import avatarkit\nreveal_type(avatarkit.AvatarSession.with_options)\n")
    result = mypy(program, cwd=tmp_path)
    assert "Revealed type" in result.stdout and "stream_limits" in result.stdout, result.stdout
    assert "Cannot find implementation" not in result.stdout
    result = pyright(program, tmp_path)
    assert "stream_limits" in result.stdout and 'Import "avatarkit"' not in result.stdout
    # ... and they read them in place: the sources of this checkout
    import avatarkit

    assert Path(avatarkit.__file__).resolve().parent == ROOT / "avatarkit"
