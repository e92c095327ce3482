"""Knobs of the emulator: credentials, pacing, media mode and fault injection."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import msgspec

from avatarkit.emulator.digime.models import MIN_PART_BYTES

__all__ = ["EmulatorOptions"]


class EmulatorOptions(msgspec.Struct, kw_only=True):
    """How the emulator behaves.

    ``pace``: ``"fast"`` sends media as fast as the socket takes it;
    ``"realtime"`` sends one 40 ms frame every 40 ms, like the real service.
    ``media``: ``"real"`` encodes every frame; ``"cheap"`` cycles a
    pre-encoded loop (for load tests that must not measure the encoder), with
    every access unit padded to ``frame_bytes`` when that is set.
    ``audio_chunk_ms``: PCM per ``|DAT|00|`` frame (40 ms = 1280 bytes).
    ``busy_opens``: how many session opens to answer with MSG 1002 first.
    ``tta_max_sessions``: the account's quota, TTA sessions open at once for the
    appid; an open above it is answered with MSG 1002 (busy), as the real
    service does.  None (default): no cap.
    ``drop_after_frames``: fail every TTA connection after that many media
    frames (the connection closes with 1011, as on a server crash).
    ``production_factor``: extra time offline production takes, as a
    fraction of the video's duration (the real service needs about 0.7).
    ``video_send_bps``: bytes per second at which a produced video leaves the
    emulator (its ``|DAT|03|`` packets, or the body of its ``video_url``
    download), the link between the service and you; None: as fast as the
    socket allows.  Read at each packet, so a test may lift it mid-delivery.

    Digime (see :mod:`avatarkit.emulator.digime`): ``digime_init_data_shape``
    is how ``/init_part_upload`` answers, ``{"upload_id": …}`` (``"object"``,
    as documented) or the bare id (``"bare"``, as the doc's demo reads it);
    ``digime_min_part_bytes`` the smallest allowed part but the last (5 MiB
    on the real service); ``digime_training_seconds`` how long a training
    takes; ``digime_fail_conf_names`` the avatars whose training fails.

    Shaping of the HTTP services (see :mod:`avatarkit.emulator.shaping`):
    ``latency_ms`` before each response; ``bandwidth_bps`` caps how fast
    each connection's request bodies are read; ``failure_rate`` (0..1) of the
    part uploads fail, as ``failure_mode`` says (``"5xx"``: HTTP 503;
    ``"drop"``: the connection is cut before the reply; ``"mixed"``: either),
    drawn from ``random.Random(fault_seed)``.

    SAMI voice conversion (see :mod:`avatarkit.emulator.sami`):
    ``sami_appkey``/``sami_token`` are the credentials it accepts (``None``:
    the same as ``appid``/``token``).

    MetaStudio (see :mod:`avatarkit.emulator.metastudio`): the project id
    and credentials it accepts (``metastudio_project_id``, an AK/SK pair,
    an IAM token); ``metastudio_url_ttl_seconds`` how long a presigned upload
    URL is valid; ``metastudio_step_seconds`` the time between two states of
    a submitted job; ``metastudio_fail_names`` the job names whose automatic
    review fails (AUTO_VERIFY_FAILED); ``metastudio_hold_parts`` training-video
    part numbers whose PUT is stored only once another part has been (a test
    knob: parts then complete out of order, deterministically).
    """

    appid: str = "emulator-appid"
    token: str = "emulator-token-0123456789"
    pace: Literal["fast", "realtime"] = "fast"
    media: Literal["real", "cheap"] = "real"
    frame_bytes: int | None = None
    audio_chunk_ms: int = 40
    busy_opens: int = 0
    tta_max_sessions: int | None = None
    drop_after_frames: int | None = None
    production_factor: float = 0.0
    media_chunk_bytes: int = 256 * 1024
    video_send_bps: float | None = None
    open_timeout: float = 30.0
    keep_videos: int = 16
    digime_init_data_shape: Literal["object", "bare"] = "object"
    digime_min_part_bytes: int = MIN_PART_BYTES
    digime_training_seconds: float = 1.0
    digime_fail_conf_names: Collection[str] = ()
    latency_ms: float = 0.0
    bandwidth_bps: float | None = None
    bandwidth_total_bps: float | None = None  # one cap shared by all connections (a link's total)
    failure_rate: float = 0.0
    failure_mode: Literal["5xx", "drop", "mixed"] = "mixed"
    fault_seed: int | None = None
    sami_appkey: str | None = None
    sami_token: str | None = None
    metastudio_project_id: str = "emulator-project"
    metastudio_ak: str = "EMULATORAK0000000000"
    metastudio_sk: str = "emulator-sk-0123456789abcdef"
    metastudio_token: str = "emulator-iam-token-0123456789"
    metastudio_url_ttl_seconds: float = 86400.0
    metastudio_step_seconds: float = 0.5
    metastudio_fail_names: Collection[str] = ()
    metastudio_hold_parts: Collection[int] = ()
