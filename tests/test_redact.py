"""Masking never raises, whatever a hostile peer sends; and it masks only the SDK's own."""

from __future__ import annotations

import logging

import pytest

from avatarkit import events
from avatarkit._redact import redact_url, short_repr


def test_a_url_that_does_not_parse_is_masked_not_raised() -> None:
    assert redact_url("http://[::1?token=s3cret") == "http://[::1?***"
    assert "s3cret" not in repr(events.VideoUrl("http://[?X-Amz-Signature=s3cret"))
    assert redact_url("http://[") == "http://["


def test_short_repr_of_values_that_cannot_be_printed() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert short_repr(deep) == "<list object>"
    assert short_repr(10**5000) == "<int object>"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert short_repr(Broken()) == "<Broken object>"


def test_importing_avatarkit_touches_no_other_librarys_logger() -> None:
    import subprocess
    import sys

    code = (
        "import logging, avatarkit, avatarkit.tta, avatarkit.digime.upload\n"
        "print([n for n in ('httpx', 'httpcore', 'websockets')"
        " if logging.getLogger(n).filters])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.anyio
async def test_the_applications_own_httpx_lines_are_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import httpx

    from avatarkit.emulator import Emulator
    from avatarkit.errors import ServiceError

    caplog.set_level(logging.INFO, logger="httpx")
    async with Emulator() as emu:
        async with emu.session() as av:
            with pytest.raises(ServiceError):
                await av.digime.status("Nobody")  # one of the SDK's own requests
        async with httpx.AsyncClient() as http:  # and one of the application's
            await http.get(f"{emu.endpoints.digime}/mine?token=the-apps-own-value")
        token = emu.token
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert len(lines) == 2, lines
    assert "the-apps-own-value" in lines[1]  # not ours: not rewritten
    assert token not in caplog.text


@pytest.mark.parametrize(("value", "shown"), [("debug", True), ("info", False), ("", False)])
def test_avatarkit_log_turns_on_the_sdks_logging_and_still_masks(value: str, shown: bool) -> None:
    import os
    import subprocess
    import sys

    code = (
        "import logging, avatarkit\n"
        "from avatarkit._redact import register_secret\n"
        "from avatarkit._retry import log\n"
        "register_secret('hush-123456')\n"
        "log.info('info line with hush-123456')\n"
        "log.debug('debug line')\n"
        "print(logging.getLogger('httpx').handlers, logging.getLogger().handlers)\n"
    )
    env = {**os.environ, "AVATARKIT_LOG": value}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "[] []"  # no other logger touched
    assert ("debug line" in out.stderr) is shown
    assert ("info line with ***" in out.stderr) is bool(value)
    assert "hush-123456" not in out.stderr


def test_a_misspelt_avatarkit_log_is_reported_not_raised() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "AVATARKIT_LOG": "verbose"}
    out = subprocess.run(
        [sys.executable, "-c", "import avatarkit"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0
    assert "AVATARKIT_LOG='verbose' is not one of debug, info: ignored" in out.stderr
