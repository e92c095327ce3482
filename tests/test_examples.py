"""The examples run as documented: the FastAPI app and the notebook, against the emulator."""

from __future__ import annotations

import base64
import importlib.util
import io
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import anyio
import av
import httpx
import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from avatarkit import AvatarSession
from avatarkit.emulator import Emulator
from avatarkit.emulator.process import EmulatorProcess, spawn_emulator
from avatarkit.emulator.server import serve_asgi

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONF = "Example-Avatar"
SECRET = "a-long-test-secret"


@pytest.fixture(scope="module")
def emulator_env() -> Iterator[EmulatorProcess]:
    """One emulator process for the module: fast pace, short trainings."""
    with spawn_emulator("--pace", "fast", "--set", "digime_training_seconds=0.2") as emu:
        yield emu


@pytest.fixture
def env(
    emulator_env: EmulatorProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> EmulatorProcess:
    """The emulator's variables in this process's environment (and its children's)."""
    for name, value in emulator_env.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AVATARKIT_STATE_DIR", str(tmp_path / "state"))  # upload journals
    monkeypatch.delenv("AVATARKIT_CALLBACK_SECRET", raising=False)
    monkeypatch.delenv("AVATARKIT_PUBLIC_URL", raising=False)
    return emulator_env


def load_example(name: str) -> types.ModuleType:
    """``examples/<name>.py`` as a module (``examples`` is a folder, not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"avatarkit_examples_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


def assert_playable_mp4(data: bytes) -> None:
    with av.open(io.BytesIO(data), mode="r") as container:
        assert container.format.name.startswith("mov,mp4")
        kinds = sorted(stream.type for stream in container.streams)
        assert kinds == ["audio", "video"]
        frames = sum(1 for _ in container.decode(video=0))
        assert frames > 10  # over 0.4 s of avatar


# -- the FastAPI app ----------------------------------------------------------------


@pytest.mark.anyio
async def test_fastapi_app_videos_and_training(
    env: EmulatorProcess, tmp_path: Path, training_clip: bytes
) -> None:
    example = load_example("fastapi_app")
    app = example.create_app(callback_secret=SECRET)
    receiver = app.state.receiver
    material = tmp_path / f"{CONF}.mp4"
    material.write_bytes(training_clip)  # a 1080p mp4: the emulator's training review probes it

    # The app's lifespan (what uvicorn runs) around a real loopback server: the emulator,
    # in its own process, must reach the callback URL.
    async with (
        app.router.lifespan_context(app),
        serve_asgi(app) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        # (b) a video, produced by the session the lifespan made from the environment
        response = await client.post("/videos", json={"text": "你好！今天天气真不错。"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "video/mp4"
        assert_playable_mp4(response.content)

        response = await client.post("/videos", json={"text": ""})
        assert response.status_code == 422  # refused by the app, before the SDK
        response = await client.post("/videos", json={"text": "你好", "role": " "})
        assert response.status_code == 422  # refused by the SDK's rules, before the service
        assert "field" in response.json()

        # (c) training: upload the material, train with the callback pointed at the app
        async with AvatarSession.from_env() as own:
            await own.digime.upload(
                material,
                conf_name=CONF,
                role_show_name="示例",
                input_resource="examples",
                check_resolution=False,
            )
        response = await client.post(f"/training/{CONF}")
        assert response.status_code == 202, response.text
        assert response.json() == {"conf_name": CONF, "callback_url": f"{base}/avatarkit/callback/"}

        response = await client.get(f"/training/{CONF}", params={"wait": 20})
        assert response.status_code == 200, response.text
        assert response.json()["state"] == 2 and response.json()["done"] is True

        # (a) the service's callback reached the mounted receiver (with the secret)
        with anyio.fail_after(20):
            callback = await receiver.wait_for(CONF)
        assert callback.state == 2 and callback.role_pic
        response = await client.get(f"/training/{CONF}")
        assert response.json()["state"] == 2 and response.json()["callback_received"] is True

        # the mount refuses callbacks without the secret, and unknown avatars are 404
        response = await client.post(
            "/avatarkit/callback/", json={"conf_name": "Forged-1", "state": 2}
        )
        assert response.status_code == 401
        response = await client.get("/training/Nobody-1")
        assert response.status_code == 404, response.text
    assert receiver.closed  # the lifespan's end closed it


@pytest.mark.anyio
async def test_fastapi_app_streams_a_video_before_its_production_has_arrived() -> None:
    # An in-process emulator, so that the test can see (and lift) how far the video's
    # delivery is: it lets the video out at 2 KB/s, minutes for the whole.
    example = load_example("fastapi_app")
    async with Emulator(media_chunk_bytes=2048, video_send_bps=2048) as emu:
        app = example.create_app(session_factory=emu.session)
        async with (
            app.router.lifespan_context(app),
            serve_asgi(app) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
            client.stream("POST", "/videos/stream", json={"text": "你好！今天天气真不错。"}) as r,
        ):
            assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
            chunks = r.aiter_bytes()
            first = await anext(chunks)
            assert first and emu.stats.tta_videos_delivered == 0  # still being sent
            emu.options.video_send_bps = None
            rest = b"".join([chunk async for chunk in chunks])
        assert emu.stats.tta_videos_delivered == 1
    assert_playable_mp4(first + rest)


def test_fastapi_app_module_imports_without_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``uvicorn examples.fastapi_app:app`` imports the module before any variable is read."""
    for name in ("AVATARKIT_APPID", "AVATARKIT_TOKEN", "AVATARKIT_CALLBACK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    example = load_example("fastapi_app")
    paths = {getattr(route, "path", None) for route in example.app.routes}
    assert {"/videos", "/training/{conf_name}", "/avatarkit/callback"} <= paths


# -- the notebook -------------------------------------------------------------------


def test_notebook_is_committed_without_outputs() -> None:
    notebook = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None


@pytest.fixture(params=["emulator process", "emulator in the kernel"])
def notebook_env(
    request: pytest.FixtureRequest,
    emulator_env: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> str:
    """The kernel's environment: pointed at the emulator process, or with no account
    at all, when the notebook starts an emulator in the kernel itself."""
    if request.param == "emulator process":
        for name, value in emulator_env.env.items():
            monkeypatch.setenv(name, value)
    else:
        for name in emulator_env.env:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AVATARKIT_STATE_DIR", str(tmp_path / "state"))
    return str(request.param)


def test_notebook_runs_headless(
    notebook_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Keep Jupyter's and IPython's files out of the home directory.
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    # The native kernel of this very interpreter (ipykernel's own spec, with
    # sys.executable), whatever kernel specs this machine has installed, or not.
    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)

    notebook = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    client = nbclient.NotebookClient(
        notebook,
        km=km,
        timeout=60,
        startup_timeout=60,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    # Every cell is its own task in ipykernel: the session, the stream and (without an
    # account) the emulator are opened in one cell and closed in the last one.
    client.execute()  # raises CellExecutionError with the traceback if a cell fails

    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    assert not [output for output in outputs if output.output_type == "error"]
    html = [
        output.data["text/html"]
        for output in outputs
        if output.output_type in ("execute_result", "display_data") and "text/html" in output.data
    ]
    # the video, inline, with its data embedded (ProducedVideo's own rich display)
    videos = [h for h in html if h.startswith("<video")]
    assert len(videos) == 1
    found = re.fullmatch(
        r'<video controls src="data:video/mp4;base64,([A-Za-z0-9+/=]+)"></video>', videos[0]
    )
    assert found is not None
    embedded = base64.b64decode(found.group(1))
    assert embedded == (tmp_path / "avatar.mp4").read_bytes()
    assert_playable_mp4(embedded)
    # the converted voice, as an audio player (ConvertedAudio's rich display)
    audios = [h for h in html if h.startswith("<audio")]
    assert len(audios) == 1
    found = re.fullmatch(
        r'<audio controls src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"></audio>', audios[0]
    )
    assert found is not None
    wav = base64.b64decode(found.group(1))
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and len(wav) > 24000  # over 0.5 s at 24 kHz
    # the subtitles, printed; the session closed in the last cell
    printed = "".join(
        output.text
        for output in outputs
        if output.output_type == "stream" and output.name == "stdout"
    )
    assert "我是你的数字人助手。" in printed
    assert re.search(r"0\.00 – +\d+\.\d\d s  你好！", printed)
    assert printed.count("state='open'") == 1 and printed.rstrip().endswith("state='closed')")
