"""The emulator in a child process: for benchmarks and tests that must not share a CPU
or an event loop with it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from avatarkit._session import AvatarSession, Endpoints

__all__ = ["EmulatorProcess", "spawn_emulator"]


@dataclass(frozen=True)
class EmulatorProcess:
    """Where a spawned emulator listens and how to authenticate to it."""

    port: int
    appid: str
    token: str
    endpoints: Endpoints
    env: dict[str, str]  # the banner's variables: AVATARKIT_*, METASTUDIO_*, CLOUD_SDK_*

    def session(self, **kwargs: Any) -> AvatarSession:
        """An :class:`AvatarSession` pointed at this emulator."""
        return AvatarSession(self.appid, self.token, endpoints=self.endpoints, **kwargs)


@contextmanager
def spawn_emulator(*args: str, host: str = "127.0.0.1") -> Iterator[EmulatorProcess]:
    """Run ``avatarkit emulator --port 0 ARGS`` until the block ends.

    ``args`` are the command's options (``"--pace", "fast"``, ``"--set", "latency_ms=20"``).
    """
    cmd = [
        sys.executable,
        "-m",
        "avatarkit",
        "emulator",
        "--host",
        host,
        "--port",
        "0",
        "--log-level",
        "warning",
        *args,
    ]
    # stderr goes to a file, not a pipe: an undrained pipe would block the emulator
    # once its logs fill the pipe's buffer.
    with tempfile.TemporaryFile(mode="w+") as errors:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            if "listening on http://" not in banner:
                proc.wait(timeout=10)
                errors.seek(0)
                raise RuntimeError(f"the emulator did not start: {banner}{errors.read()}")
            exports: dict[str, str] = {}
            while line := proc.stdout.readline().strip():  # the banner ends at a blank line
                name, _, value = line.removeprefix("export ").partition("=")
                exports[name] = value
            port = int(banner.split("listening on http://")[1].split()[0].rsplit(":", 1)[1])
            yield EmulatorProcess(
                port=port,
                appid=exports["AVATARKIT_APPID"],
                token=exports["AVATARKIT_TOKEN"],
                endpoints=Endpoints(
                    tta=exports["AVATARKIT_TTA_URL"],
                    digime=exports["AVATARKIT_DIGIME_URL"],
                    sami=exports["AVATARKIT_SAMI_URL"],
                ),
                env=exports,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
