"""The closed event union under a type checker: exhaustive matches pass, gaps fail.

CI also runs ``mypy --strict tests/typing`` (.ci/run); this shows that check can fail.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).parent / "typing" / "exhaustive_events.py"


# Errors in the sample only (the SDK is type-checked on its own, at its own versions).
MYPY = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent"]


def mypy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MYPY, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_match_over_every_event_type_is_exhaustive(tmp_path: Path) -> None:
    assert mypy(SAMPLE).returncode == 0
    gap = tmp_path / "gap.py"
    gap.write_text(
        SAMPLE.read_text().replace(
            "        case events.Unknown(header=header):\n            return header\n", ""
        )
    )
    result = mypy(gap)
    assert result.returncode == 1
    assert 'incompatible type "Unknown"; expected "Never"' in result.stdout
