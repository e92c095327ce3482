"""Real training videos for MetaStudio tests, made cheaply (1 fps, libx264 ultrafast).

Doc 003 (table 6): review passes only an MP4, 1080p or 4K, 3 to 10 minutes long.
``VALID`` is the cheapest such file (1920x1080, 181 s at 1 fps: encoded in
about a second); ``make_video`` makes others (too short, 720p…) for the review's
refusals.  The session fixtures make each once, in a temporary directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def make_video(path: Path, seconds: int, width: int = 1920, height: int = 1080) -> Path:
    """An MP4 of ``seconds`` seconds at 1 fps (one frame per second, grey levels changing)."""
    from avatarkit.emulator.media import still_clip

    still_clip(path, seconds + 1, width=width, height=height)
    return path


@pytest.fixture(scope="session")
def training_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A video review accepts: 1920x1080 MP4, 181 s."""
    return make_video(tmp_path_factory.mktemp("metastudio") / "talk.mp4", 181)


@pytest.fixture(scope="session")
def short_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1080p MP4 of 5 s: review refuses its duration."""
    return make_video(tmp_path_factory.mktemp("metastudio") / "short.mp4", 5)


@pytest.fixture(scope="session")
def small_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1280x720 MP4 of 181 s: review refuses its resolution."""
    return make_video(tmp_path_factory.mktemp("metastudio") / "720p.mp4", 181, 1280, 720)
