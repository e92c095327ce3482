"""Lazy imports (issue 10, item 5): ``import avatarkit`` loads what an AvatarSession needs.

The packages resolve their public names on first use (PEP 562 ``__getattr__``)
and the session makes its sub-clients on first use, so a fresh
``import avatarkit`` (and ``AvatarSession(...)``) must not load:

* ``websockets`` (any of it), ``avatarkit.tta.stream``, ``avatarkit.tta._ws``:
  the WebSocket client loads on the first ``av.tta.open()``;
* ``avatarkit.tta.ssml``, ``xml.etree``, ``xml.parsers.expat``: SSML; and even
  with SSML loaded, the XML parser loads on the first ``validate()``;
* ``avatarkit.digime.upload``, ``avatarkit.digime.source``, ``tarfile``: uploads
  (tarfile only when a folder is packed);
* ``wave``, ``avatarkit.tta.audio``, ``avatarkit.voice.probe``: WAV reading;
* ``avatarkit.media``, ``av`` (PyAV): the media writers;
* ``avatarkit.metastudio``;
* ``httpx``: made with the session's first HTTP client or the first module that
  needs it (``avatarkit._http``).

Still loaded, by design: ``anyio`` and ``msgspec`` (the session's limiter and
:class:`~avatarkit.Endpoints`), ``avatarkit._retry``, ``avatarkit._redact``,
``avatarkit.errors``, ``avatarkit._progress``.  ``AvatarSession(...)`` also loads
``asyncio`` (``anyio.CapacityLimiter`` made outside a loop goes through anyio's
backend probing); any program that runs a session runs an event loop anyway.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tarfile

import pytest

import avatarkit

PACKAGES = (
    "avatarkit",
    "avatarkit.voice",
    "avatarkit.metastudio",
    "avatarkit.media",
)

#: Not loaded by ``import avatarkit`` nor by ``AvatarSession(...)``.
NOT_AT_IMPORT = (
    "websockets",
    "httpx",
    "avatarkit.tta.stream",
    "avatarkit.tta._ws",
    "avatarkit.tta.ssml",
    "avatarkit.tta.audio",
    "xml.etree",
    "xml.parsers.expat",
    "avatarkit.digime.client",
    "avatarkit.digime.upload",
    "avatarkit.digime.source",
    "tarfile",
    "wave",
    "avatarkit.voice.client",
    "avatarkit.voice.probe",
    "avatarkit.media",
    "avatarkit.metastudio",
    "av",
)


def _loaded_after(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


# In this process a session's token is registered as a secret and masked in every
# message from then on: use a value no other test's text contains.
APPID, TOKEN = "lazy-appid", "lazy-imports-token-7f3a"


def _loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("package", PACKAGES)
def test_star_import_and_from_import_work(package: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    module = importlib.import_module(package)
    assert set(module.__all__) <= set(namespace)
    for name in module.__all__:
        exec(f"from {package} import {name}", {})


@pytest.mark.parametrize("package", PACKAGES)
def test_unknown_names_still_raise_attribute_error(package: str) -> None:
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = module.no_such_name
    assert not hasattr(module, "no_such_name")


def test_lazy_names_are_the_defining_modules_objects() -> None:
    from avatarkit.tta import events
    from avatarkit.tta.config import SessionConfig
    from avatarkit.tta.stream import TtaStream
    from avatarkit.voice.client import ConvertedAudio

    assert avatarkit.events is events
    assert avatarkit.SessionConfig is SessionConfig
    assert avatarkit.TtaStream is TtaStream
    assert avatarkit.ConvertedAudio is ConvertedAudio
    assert avatarkit.voice.ConvertedAudio is ConvertedAudio


@pytest.mark.parametrize(
    "code",
    ["import avatarkit", "import avatarkit; avatarkit.AvatarSession('appid', 'token')"],
    ids=["import", "session"],
)
def test_import_avatarkit_loads_none_of_the_heavy_modules(code: str) -> None:
    loaded = _loaded_after(code)
    assert "avatarkit._session" in loaded
    heavy = [name for name in NOT_AT_IMPORT if _loaded(loaded, name)]
    assert heavy == []


def test_each_sub_client_loads_on_first_use() -> None:
    loaded = _loaded_after(
        "import avatarkit\n"
        "av = avatarkit.AvatarSession('appid', 'token')\n"
        "assert av.tta is av.tta and av.digime is av.digime\n"
        "assert av.voice is av.voice and av.voice_clone is av.voice_clone\n"
    )
    assert {"avatarkit.tta.client", "avatarkit.digime.client", "avatarkit.voice.client"} <= loaded
    # Made, not used: still no WebSocket client, SSML, tar or WAV reader.
    for name in ("websockets", "avatarkit.tta.stream", "avatarkit.tta.ssml", "tarfile", "wave"):
        assert not _loaded(loaded, name), name


def test_opening_a_stream_loads_the_websocket_client() -> None:
    loaded = _loaded_after(
        "import avatarkit\n"
        "av = avatarkit.AvatarSession('appid', 'token')\n"
        "av.tta.open('GuoXiaoyuan')\n"
    )
    assert {"avatarkit.tta.stream", "avatarkit.tta._ws", "websockets.client"} <= loaded


def test_sub_clients_are_the_same_objects_and_can_be_replaced() -> None:
    av = avatarkit.AvatarSession(APPID, TOKEN)
    assert av.tta is av.tta
    assert av.digime is av.digime
    assert av.voice_clone is av.voice_clone
    assert av.voice is av.voice
    replacement = object()
    av.voice = replacement  # type: ignore[assignment]
    assert av.voice is replacement


def test_stream_limits_are_still_checked_when_the_session_is_made() -> None:
    with pytest.raises(avatarkit.ValidationError, match="stream_limits"):
        avatarkit.AvatarSession(APPID, TOKEN, stream_limits={"queue_size": 3})  # type: ignore[arg-type]
    limits = avatarkit.StreamLimits(queue_size=3)
    assert avatarkit.AvatarSession(APPID, TOKEN, stream_limits=limits).tta.limits is limits


def test_the_tar_constants_match_tarfile() -> None:
    from avatarkit.digime import source

    assert source._BLOCK == tarfile.BLOCKSIZE
    assert source._RECORD == tarfile.RECORDSIZE
