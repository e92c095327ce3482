"""The emulator's ASGI application (Starlette): every service on one port."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute

from avatarkit.emulator import digime, metastudio, sami
from avatarkit.emulator.options import EmulatorOptions
from avatarkit.emulator.routes import (
    HEALTH_PATH,
    SHAPED_PREFIXES,
    STATS_PATH,
    TTA_PATH,
    VIDEOS_PATH,
)
from avatarkit.emulator.shaping import Pacer, Shaper, check_shaping_options
from avatarkit.emulator.state import EmulatorState
from avatarkit.emulator.tta import tta_endpoint

__all__ = ["TTA_PATH", "create_app"]

_CONTENT_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}


async def _video(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    name = request.path_params["name"]
    video_id = name.split(".", 1)[0]
    found = state.video(video_id, request.query_params.get("signature", ""))
    if found is None:
        return JSONResponse(
            {"code": 404, "message": "no such video or bad signature"}, status_code=404
        )
    data, codec = found
    media_type = _CONTENT_TYPES.get(codec, "application/octet-stream")
    if state.options.video_send_bps is None:
        state.stats.tta_videos_delivered += 1
        return Response(data, media_type=media_type)

    async def body() -> AsyncIterator[bytes]:
        # Paced like the |DAT|03| packets: the link between the service's storage and you.
        pacer = Pacer(lambda: state.options.video_send_bps)
        size = state.options.media_chunk_bytes
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            await pacer.wait(len(piece))
            yield piece
        state.stats.tta_videos_delivered += 1

    return StreamingResponse(
        body(), media_type=media_type, headers={"content-length": str(len(data))}
    )


async def _stats(request: Request) -> Response:
    """The counters (tests and benchmarks of another process read them here)."""
    stats = request.app.state.emulator.stats
    if request.method == "POST":  # a new measurement: peaks start from what is open now
        stats.tta_sessions_peak = stats.tta_sessions_active
    return JSONResponse(dataclasses.asdict(stats))


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(options: EmulatorOptions | None = None) -> Starlette:
    """The emulator app; its state is at ``app.state.emulator``."""
    state = EmulatorState(options or EmulatorOptions())
    check_shaping_options(state.options)
    digime.check_digime_options(state.options)
    metastudio.check_metastudio_options(state.options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.running = True
        state.started.set()
        try:
            async with state.digime.running():  # owns digime's timers and callbacks
                async with state.metastudio.running():  # owns the jobs' timers
                    yield
        finally:
            state.running = False

    app = Starlette(
        routes=[
            WebSocketRoute(TTA_PATH + "/{dimension:str}", tta_endpoint),
            Route(VIDEOS_PATH + "/{name:str}", _video),
            Route(HEALTH_PATH, _health),
            Route(STATS_PATH, _stats, methods=["GET", "POST"]),
            *digime.digime_routes(),
            *metastudio.metastudio_routes(),
            *sami.sami_routes(),
        ],
        lifespan=lifespan,
    )
    app.state.emulator = state
    # Shaping and fault injection; a service's faults are its own (fault_targets).
    app.add_middleware(
        Shaper,
        options=state.options,
        state=state,
        path_prefixes=SHAPED_PREFIXES,
        fault_targets=(*digime.fault_targets(), *metastudio.fault_targets()),
    )
    return app
