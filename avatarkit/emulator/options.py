"""Knobs of the emulator: credentials, pacing, media mode and fault injection."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import msgspec

from avatarkit.emulator.digime.models import MIN_PART_BYTES

__all__ = ["EmulatorOptions"]


class EmulatorOptions(msgspec.Struct, kw_only=True):
    """How the emulator behaves: credentials, pacing, media mode and fault injection.

    Pass them as ``Emulator(pace="realtime", latency_ms=20)`` (or
    ``Emulator(options=EmulatorOptions(...))``), to :func:`~avatarkit.emulator.serve`, or
    on the command line as ``avatarkit emulator --set NAME=VALUE``. Nonsensical values of
    the shaping, digime and MetaStudio knobs are refused with a
    :class:`~avatarkit.errors.ValidationError` when the emulator's app is created, not at
    the first request. The shaping knobs, ``digime_training_seconds`` and
    ``metastudio_step_seconds`` are read at each use, so a test may change them on
    ``Emulator.options`` while it runs; ``busy_opens`` is read once, at creation.
    """

    # -- TTA -------------------------------------------------------------------------------

    appid: str = "emulator-appid"
    """The appid the emulator accepts: the TTA ``appid`` query parameter and the session
    config's ``appid``, the digime bodies' ``appid``, and SAMI's appkey unless
    ``sami_appkey`` is set."""
    token: str = "emulator-token-0123456789"
    """The token it accepts: the TTA ``access_token`` query parameter (HTTP 401 at the
    handshake otherwise), the digime ``Authorization`` header (the raw token, no
    ``Bearer``), and SAMI's token unless ``sami_token`` is set."""
    pace: Literal["fast", "realtime"] = "fast"
    """How TTA media is timed: ``"fast"`` (default) sends it as fast as the encoder and the
    socket allow; ``"realtime"`` sends each 40 ms video frame at its media time from the
    utterance's start (25 fps), like the real service."""
    media: Literal["real", "cheap"] = "real"
    """``"real"`` (default) encodes every frame (H.264 with the mouth following the audio);
    ``"cheap"`` cycles a pre-encoded loop, for load tests that must not measure the
    encoder."""
    frame_bytes: int | None = None
    """Pad every H.264 access unit sent to exactly this many bytes (a filler-data NAL;
    larger units are sent as they are), for load tests with a chosen frame size. At
    least 1; ``None`` (default): no padding."""
    audio_chunk_ms: int = 40
    """Milliseconds of PCM per ``|DAT|00|`` frame (16 kHz mono s16le: 40 ms is 1280
    bytes), rounded down to a multiple of 40 ms, at least 40. Default 40."""
    busy_opens: int = 0
    """Answer the first N session opens (counted over all connections) with ``|MSG|``
    code 1002, server busy, as the real service does under load. Default 0."""
    tta_max_sessions: int | None = None
    """The account's quota: TTA sessions open at once for the appid.  An open above it
    is answered with ``|MSG|`` 1002 (busy), as the real service does; the batch
    lowers its concurrency on it.  At least 1; ``None`` (default): no cap."""
    drop_after_frames: int | None = None
    """Fail every TTA connection once it has sent this many media frames (``|DAT|00|``
    and ``|DAT|01|`` together): it closes with code 1011, as on a server crash.
    ``None`` (default): never."""
    production_factor: float = 0.0
    """Extra time offline production takes after the close, as a fraction of the video's
    duration (the real service needs about 0.7, doc 001). Default 0: only the encoding
    time."""
    media_chunk_bytes: int = 256 * 1024
    """Bytes per ``|DAT|03|`` frame when the produced video is sent over the socket (the
    last piece is ``|DAT|04|``); with ``output_url``, the piece size of a download paced
    by ``video_send_bps``. Default 256 KiB."""
    video_send_bps: float | None = None
    """Bytes per second at which a produced video leaves the emulator (its ``|DAT|03|``
    packets, or the body of its ``video_url`` download): the link between the service
    and you.  Read at each packet, so a test may lift it mid-delivery.  Above 0;
    ``None`` (default): as fast as the socket allows."""
    open_timeout: float = 30.0
    """Seconds the emulator waits, after the WebSocket handshake, for the first frame
    (the ``|CTL|00|`` open); then it ends the connection without a reply. Default 30."""
    keep_videos: int = 16
    """How many produced videos of ``output_url`` sessions it keeps to serve at their
    ``video_url``; past that the oldest is dropped (its URL then answers 404). Default
    16."""

    # -- digime ----------------------------------------------------------------------------

    digime_init_data_shape: Literal["object", "bare"] = "object"
    """How ``/init_part_upload`` answers: ``"object"`` (default), ``{"upload_id": …}`` as
    doc 000 documents, or ``"bare"``, the id alone, as the doc's demo reads it."""
    digime_min_part_bytes: int = MIN_PART_BYTES
    """The smallest part but the last, in bytes (default 5 MiB, the real service's rule:
    a shorter last part is merged into the one before); a smaller one is refused with
    the part-size ``errno``. At least 1."""
    digime_training_seconds: float = 1.0
    """Seconds a digime training takes before its review and callback (state 1 → 2 or
    3). At least 0; default 1."""
    digime_fail_conf_names: Collection[str] = ()
    """The ``conf_name`` values whose training fails (state 3, with an emulator-only
    ``fail_reason``); a lone string is one name. Default: none."""

    # -- shaping of the HTTP services --------------------------------------------------------

    latency_ms: float = 0.0
    """Milliseconds added before each HTTP response of digime, SAMI and MetaStudio
    (presigned PUTs included; not TTA) starts. At least 0; default 0."""
    bandwidth_bps: float | None = None
    """Caps how fast each TCP connection's request bodies are read, in **bytes** per
    second (a token bucket per connection), on the same paths as ``latency_ms``. Above 0;
    ``None`` (default): no cap."""
    bandwidth_total_bps: float | None = None
    """One cap, in bytes per second, shared by all connections (a link's total), so that
    parallel uploads cannot each get ``bandwidth_bps``. Above 0; ``None`` (default): no
    cap."""
    failure_rate: float = 0.0
    """Fraction (0 to 1) of digime part uploads (``/video_part_upload``) and MetaStudio
    presigned PUTs that fail on purpose, as ``failure_mode`` says; counted in
    ``stats.digime_injected_failures`` / ``stats.metastudio_injected_failures``.
    Default 0."""
    failure_mode: Literal["5xx", "drop", "mixed"] = "mixed"
    """How an injected failure looks: ``"5xx"``, HTTP 503 in the service's error envelope
    (the service never sees the request); ``"drop"``, the connection is cut before the
    reply (the service may or may not have acted on it); ``"mixed"`` (default), either
    at random."""
    fault_seed: int | None = None
    """Seed of the ``random.Random`` every fault choice comes from, so a seeded run with
    sequential requests injects the same faults each time. ``None`` (default): seeded
    from the system."""

    # -- SAMI ------------------------------------------------------------------------------

    sami_appkey: str | None = None
    """The appkey SAMI's ``/api/v1/invoke`` accepts; ``None`` (default): ``appid``."""
    sami_token: str | None = None
    """The token SAMI accepts; ``None`` (default): ``token``."""

    # -- MetaStudio ------------------------------------------------------------------------

    metastudio_project_id: str = "emulator-project"
    """The only ``project_id`` the MetaStudio paths accept. A non-empty string."""
    metastudio_ak: str = "EMULATORAK0000000000"
    """The access key of the AK/SK pair whose ``SDK-HMAC-SHA256`` signatures it
    verifies. A non-empty string."""
    metastudio_sk: str = "emulator-sk-0123456789abcdef"
    """The secret key of that pair. A non-empty string."""
    metastudio_token: str = "emulator-iam-token-0123456789"
    """The IAM token (``X-Auth-Token``) it accepts instead of a signature. A non-empty
    string."""
    metastudio_url_ttl_seconds: float = 86400.0
    """Seconds a presigned upload URL stays valid after it is handed out. At least 0;
    default 86400 (a day)."""
    metastudio_step_seconds: float = 0.5
    """Seconds between two states of a submitted job on its way to ``JOB_SUCCESS``. At
    least 0; default 0.5."""
    metastudio_fail_names: Collection[str] = ()
    """Job names whose automatic review fails (``AUTO_VERIFY_FAILED``, the reason in the
    job's ``operation_logs``); a lone string is one name. Default: none."""
    metastudio_hold_parts: Collection[int] = ()
    """A test knob: training-video part numbers whose PUT is stored only once another
    part (not listed) has been, so parts complete out of order, deterministically.
    Default: none."""
