"""Every Python snippet in README.md and docs/ runs, against the emulator, as a user would.

Each block becomes a script in a folder that holds the files the snippets name
(``talk.mp4``, ``in.wav``, ``samples/``, ``cover.jpg``); blocks with a
top-level ``await`` are wrapped in ``async def`` and run with anyio.  The
environment points the SDK at a spawned emulator, and ``https://example.com``
(the snippets' stand-in for the user's own host) is replaced by a loopback
file server, so nothing leaves this machine.  Blocks fenced ``python`` run;
``py`` marks a fragment that needs the reader's own context (tests/test_docs.py
checks that those parse).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import wave
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from avatarkit.emulator.process import EmulatorProcess, spawn_emulator
from avatarkit.emulator.server import serve_asgi

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: (where, block): README.md's blocks, then each docs page's.
SNIPPETS = [
    (f"{page.relative_to(ROOT)}#{number}", block)
    for page in [README, *sorted((ROOT / "docs").rglob("*.md"))]
    for number, block in enumerate(
        re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    )
]
BLOCKS = [block for where, block in SNIPPETS if where.startswith("README.md#")]


def _clip(path: Path, seconds: int) -> None:
    """A 1080p mp4 of ``seconds`` seconds at 1 fps: cheap, and a valid training video."""
    from avatarkit.emulator.media import still_clip

    still_clip(path, seconds + 1)


def _wav(path: Path) -> None:
    from avatarkit.emulator.media import synth_speech

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(synth_speech("你好，这是一段测试语音。"))


def _mp3(source: Path, target: Path) -> None:
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream = out.add_stream("libmp3lame", rate=16_000)
        for frame in src.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    _clip(folder / "talk.mp4", 181)  # 3 minutes: MetaStudio's review minimum
    _wav(folder / "in.wav")
    _mp3(folder / "in.wav", folder / "in.mp3")
    (folder / "samples").mkdir()
    _wav(folder / "samples" / "a.wav")
    (folder / "cover.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(2000))
    return folder


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with spawn_emulator(
        "--set", "digime_training_seconds=0.2", "--set", "metastudio_step_seconds=0.05"
    ) as proc:
        yield proc


def _script(block: str) -> str:
    if "anyio.run(" in block or not re.search(
        r"^(async |await )|\W(async with|async for|await) ", block, re.M
    ):
        return block
    imports = [line for line in block.splitlines() if line.startswith(("from ", "import "))]
    body = [line for line in block.splitlines() if not line.startswith(("from ", "import "))]
    return "\n".join(
        [
            "import anyio",
            *imports,
            "",
            "",
            "async def main() -> None:",
            textwrap.indent("\n".join(body), "    "),
            "",
            "",
            "anyio.run(main)",
            "",
        ]
    )


def test_the_readme_has_snippets() -> None:
    assert len(BLOCKS) >= 7


@pytest.mark.parametrize("index", range(len(SNIPPETS)), ids=[where for where, _ in SNIPPETS])
def test_snippet_runs(index: int, workdir: Path, emulator: EmulatorProcess) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    where, block = SNIPPETS[index]
    files = Starlette(routes=[Mount("/", StaticFiles(directory=workdir))])

    async def run() -> subprocess.CompletedProcess[str]:
        async with serve_asgi(files) as base:
            script = workdir / f"snippet_{index}.py"
            script.write_text(_script(block.replace("https://example.com", base)))
            env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARKIT_")}
            env.update(emulator.env, AVATARKIT_STATE_DIR=str(workdir / "state"))
            return await anyio.run_process(
                [sys.executable, str(script)], cwd=workdir, env=env, check=False
            )

    result = anyio.run(run)
    assert result.returncode == 0, (
        f"{where} failed:\n{block}\n--- stderr ---\n{result.stderr.decode()}"
    )
