"""Typed keyword options: a misspelt option or a wrong value fails type checking.

``tests/test_typing.py`` checks that this passes mypy --strict and pyright
strict, and that each misspelling below (swapped in) fails.
"""

from __future__ import annotations

import httpx

from avatarkit import AvatarSession, RetryPolicy, TtaStream
from avatarkit.emulator import Emulator


def open_stream(av: AvatarSession) -> TtaStream:
    return av.tta.open(
        role="GuoXiaoyuan",
        codec="mp4",
        video={"video_width": 720, "subtitle_control": True},
        role_conf={"speed": 1.2},
        idle_timeout=20,
    )


def sessions(emu: Emulator) -> list[AvatarSession]:
    return [
        AvatarSession.from_env(timeout=httpx.Timeout(10.0, connect=3.0), max_uploads=2),
        emu.session(retry=RetryPolicy(attempts=2), proxy="http://127.0.0.1:3128"),
        emu.session().with_options(timeout=5.0),
    ]
