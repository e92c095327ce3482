"""Where every emulated service lives, and the environment a client needs to reach them.

One place for the paths (the app mounts its routes from here) and for the
client environment (the ``avatarkit emulator`` banner, its machine-readable
ready line and :func:`~avatarkit.emulator.process.spawn_emulator` all use
:func:`client_env`).

The ready line: ``avatarkit emulator --ready-fd FD`` writes one JSON line to
file descriptor FD once the port is bound, before the human banner::

    {"ready": true, "url": "http://127.0.0.1:8765", "port": 8765, "env": {...}}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

if TYPE_CHECKING:
    from avatarkit.emulator.options import EmulatorOptions

__all__ = [
    "DIGIME_PICS_PATH",
    "DIGIME_PREFIX",
    "HEALTH_PATH",
    "METASTUDIO_API_PATH",
    "METASTUDIO_MANAGE_PREFIX",
    "METASTUDIO_OBS_PREFIX",
    "SAMI_PATH",
    "SHAPED_PREFIXES",
    "STATS_PATH",
    "TTA_PATH",
    "VIDEOS_PATH",
    "ReadyLine",
    "client_env",
    "parse_ready_line",
    "ready_line",
]

#: Doc 001: ``wss://openspeech.bytedance.com/api/v1/volc_virtual_human/tta/{2d|3d}``.
TTA_PATH: Final = "/api/v1/volc_virtual_human/tta"
#: The emulator's own: produced videos, when a session asks for ``output_url``.
VIDEOS_PATH: Final = "/tta/videos"
#: Doc 000 §6 接口地址: ``https://openspeech.bytedance.com/virtual_human/avatar_platform/digime``.
DIGIME_PREFIX: Final = "/virtual_human/avatar_platform/digime"
#: The emulator's own: a trained avatar's ``role_pic``/``pre_pic``.
DIGIME_PICS_PATH: Final = "/digime/pics"
#: Doc 002 参考示例: ``POST /api/v1/invoke``.
SAMI_PATH: Final = "/api/v1/invoke"
#: Doc 003: ``/v1/{project_id}/digital-human-training-manage/user/jobs``.
METASTUDIO_MANAGE_PREFIX: Final = "/v1/{project_id}/digital-human-training-manage"
METASTUDIO_API_PATH: Final = METASTUDIO_MANAGE_PREFIX + "/user"
#: The emulator's own object store behind the presigned upload URLs.
METASTUDIO_OBS_PREFIX: Final = "/metastudio-obs"
HEALTH_PATH: Final = "/healthz"
#: The emulator's own: its counters as JSON (``POST`` resets the peaks to the current).
STATS_PATH: Final = "/emulator/stats"

#: The HTTP paths network shaping and fault injection apply to.
SHAPED_PREFIXES: Final = (DIGIME_PREFIX, "/v1/", METASTUDIO_OBS_PREFIX + "/", SAMI_PATH)


def client_env(base_url: str, options: EmulatorOptions) -> dict[str, str]:
    """The variables that point the SDK (``AvatarSession.from_env``, ``MetaStudio.from_env``)
    and Huawei's own client at an emulator serving at ``base_url`` (``http://host:port``)."""
    base = base_url.rstrip("/")
    ws = "ws" + base.removeprefix("http")
    return {
        "AVATARKIT_APPID": options.appid,
        "AVATARKIT_TOKEN": options.token,
        "AVATARKIT_TTA_URL": ws + TTA_PATH,
        "AVATARKIT_DIGIME_URL": base + DIGIME_PREFIX,
        "AVATARKIT_SAMI_URL": base + SAMI_PATH,
        "AVATARKIT_SAMI_APPKEY": options.sami_appkey or options.appid,
        "AVATARKIT_SAMI_TOKEN": options.sami_token or options.token,
        "METASTUDIO_ENDPOINT": base,
        "METASTUDIO_PROJECT_ID": options.metastudio_project_id,
        "CLOUD_SDK_AK": options.metastudio_ak,
        "CLOUD_SDK_SK": options.metastudio_sk,
    }


class ReadyLine(msgspec.Struct, kw_only=True):
    """The machine-readable line the emulator writes once it listens."""

    ready: bool
    url: str
    port: int
    env: dict[str, str]


def ready_line(base_url: str, port: int, options: EmulatorOptions) -> bytes:
    """The JSON ready line (with its newline) of an emulator at ``base_url``."""
    line = ReadyLine(ready=True, url=base_url, port=port, env=client_env(base_url, options))
    return msgspec.json.encode(line) + b"\n"


def parse_ready_line(line: bytes | str) -> ReadyLine:
    """A ready line read back (``msgspec.DecodeError`` when it is not one)."""
    return msgspec.json.decode(line, type=ReadyLine)
