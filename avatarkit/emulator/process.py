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
from typing import TYPE_CHECKING, Any

import msgspec

from avatarkit.emulator.routes import parse_ready_line

if TYPE_CHECKING:
    from avatarkit._session import AvatarSession, Endpoints

__all__ = ["EmulatorProcess", "spawn_emulator"]


@dataclass(frozen=True)
class EmulatorProcess:
    """Where a spawned emulator listens and how to authenticate to it."""

    port: int
    appid: str
    token: str
    endpoints: Endpoints
    env: dict[str, str]  # the client environment: AVATARKIT_*, METASTUDIO_*, CLOUD_SDK_*
    url: str = ""  # http://host:port
    pid: int = 0  # the emulator's process (benchmarks read its CPU time)

    def session(self, **kwargs: Any) -> AvatarSession:
        """An :class:`AvatarSession` pointed at this emulator."""
        from avatarkit._session import AvatarSession

        return AvatarSession(self.appid, self.token, endpoints=self.endpoints, **kwargs)


@contextmanager
def spawn_emulator(*args: str, host: str = "127.0.0.1") -> Iterator[EmulatorProcess]:
    """Run ``avatarkit emulator --port 0 --ready-fd FD ARGS`` until the block ends.

    ``args`` are the command's options (``"--pace", "fast"``, ``"--set", "latency_ms=20"``).
    Where it listens comes from its machine-readable ready line on a pipe
    (:mod:`avatarkit.emulator.routes`), not from the human banner.
    """
    from avatarkit._session import Endpoints

    read_fd, write_fd = os.pipe()
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
        "--ready-fd",
        str(write_fd),
        *args,
    ]
    # stdout and stderr go to files, not pipes: an undrained pipe would block the
    # emulator once its output fills the pipe's buffer.
    with (
        tempfile.TemporaryFile(mode="w+") as errors,
        tempfile.TemporaryFile(mode="w+") as banner,
    ):
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=banner,
                stderr=errors,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                pass_fds=(write_fd,),
            )
        finally:
            os.close(write_fd)  # the child holds it now: EOF here once the child exits
        try:
            with os.fdopen(read_fd, "rb") as ready_pipe:
                line = ready_pipe.readline()
            try:
                ready = parse_ready_line(line)
            except msgspec.DecodeError:
                proc.wait(timeout=10)
                errors.seek(0)
                raise RuntimeError(
                    f"the emulator did not start: {line!r} {errors.read()}"
                ) from None
            env = ready.env
            yield EmulatorProcess(
                port=ready.port,
                appid=env["AVATARKIT_APPID"],
                token=env["AVATARKIT_TOKEN"],
                endpoints=Endpoints(
                    tta=env["AVATARKIT_TTA_URL"],
                    digime=env["AVATARKIT_DIGIME_URL"],
                    sami=env["AVATARKIT_SAMI_URL"],
                ),
                env=env,
                url=ready.url,
                pid=proc.pid,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
