"""avatarkit in a FastAPI app: talking-avatar videos on request, training with callbacks.

Run it against the emulator (see ``examples/README.md``)::

    uvicorn examples.fastapi_app:app

* ``POST /videos`` with ``{"text": "…"}`` answers the produced video (``video/mp4``);
* ``POST /videos/stream`` answers the same video as it is sent: its first bytes
  leave before the production has finished arriving;
* ``POST /training/{conf_name}`` starts training an uploaded avatar, with its
  ``callback_url`` pointing back at this app;
* ``GET /training/{conf_name}`` is the training state (``?wait=30`` waits up
  to 30 s for it to end, woken by the callback as soon as it arrives);
* ``/avatarkit/callback/`` is where the service POSTs the training callbacks.

One :class:`~avatarkit.AvatarSession`, made from the environment
(``AVATARKIT_APPID``, ``AVATARKIT_TOKEN``, ``AVATARKIT_*_URL``) when the app
starts, is shared by every request and closed when the app stops.

Optional settings: ``AVATARKIT_CALLBACK_SECRET`` (a shared secret the
callbacks must carry, 8+ characters) and ``AVATARKIT_PUBLIC_URL`` (this app's
address as the service sees it, e.g. ``https://avatars.example.com``; by
default the address the request came to).
"""

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from avatarkit import (
    AvatarError,
    AvatarSession,
    CallbackReceiver,
    ServiceError,
    TrainingFailed,
    TrainingInfo,
    ValidationError,
)

__all__ = ["app", "create_app"]

CALLBACK_PATH = "/avatarkit/callback"
ROLE = "GuoXiaoyuan"


class VideoRequest(BaseModel):
    """What ``POST /videos`` takes."""

    text: str = Field(min_length=1, max_length=2000, description="what the avatar says")
    role: str = Field(default=ROLE, description="the avatar")
    width: int = Field(default=480, ge=240, le=1920, description="video width in pixels")


class TrainingStarted(BaseModel):
    conf_name: str
    callback_url: str  # without the secret


class TrainingState(BaseModel):
    conf_name: str
    state: int = Field(description="1 in progress, 2 succeeded, 3 failed")
    done: bool
    role_pic: str | None = None
    pre_pic: str | None = None
    callback_received: bool  # whether this app got the service's callback for it


def avatar_session(request: Request) -> AvatarSession:
    """The app's shared session (a dependency)."""
    av: AvatarSession = request.app.state.avatar
    return av


def callback_receiver(request: Request) -> CallbackReceiver:
    """The app's training-callback receiver (a dependency)."""
    receiver: CallbackReceiver = request.app.state.receiver
    return receiver


Session = Annotated[AvatarSession, Depends(avatar_session)]
Receiver = Annotated[CallbackReceiver, Depends(callback_receiver)]


def create_app(
    *,
    session_factory: Callable[[], AvatarSession] = AvatarSession.from_env,
    callback_secret: str | None = None,
    public_url: str | None = None,
) -> FastAPI:
    """The app; ``session_factory`` makes the shared session when the app starts."""
    receiver = CallbackReceiver(secret=callback_secret)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with session_factory() as av:
            app.state.avatar = av
            try:
                yield
            finally:
                receiver.close()  # wakes anything still waiting for a callback

    app = FastAPI(title="avatarkit example", lifespan=lifespan)
    app.state.receiver = receiver  # for `await av.digime.wait(name, receiver=...)`
    # Mind the trailing slash: the mount redirects the bare path, and the service
    # does not follow redirects. The callback URL below ends with "/".
    app.mount(CALLBACK_PATH, receiver, name="avatarkit-callback")

    def callback_base(request: Request) -> str:
        base = public_url or str(request.base_url)
        return base.rstrip("/") + CALLBACK_PATH + "/"

    @app.exception_handler(AvatarError)
    async def avatar_error(request: Request, exc: Exception) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        status = 502  # the service (or the way to it) failed
        if isinstance(exc, ValidationError):
            status, body["field"] = 422, exc.field
        elif isinstance(exc, ServiceError):
            body["code"] = exc.code
            if exc.status == 404:
                status = 404
        return JSONResponse(body, status_code=status)

    @app.post(
        "/videos",
        response_class=Response,
        responses={200: {"content": {"video/mp4": {}}, "description": "the produced video"}},
    )
    async def produce_video(body: VideoRequest, av: Session) -> Response:
        """Produce a video of the avatar saying ``text`` (subtitles on)."""
        async with av.tta.open(
            role=body.role,
            codec="mp4",
            video={"video_width": body.width, "subtitle_control": True},
        ) as stream:
            async for _event in stream.say(body.text):
                pass  # the events (audio, frames, subtitles) of the live stream; unused here
            video = await stream.finish()
            data = await video.read()
        return Response(
            data,
            media_type="video/mp4",
            headers={"content-disposition": 'inline; filename="avatar.mp4"'},
        )

    @app.post(
        "/videos/stream",
        response_class=StreamingResponse,
        responses={200: {"content": {"video/mp4": {}}, "description": "the video, as it comes"}},
    )
    async def stream_video(body: VideoRequest, av: Session) -> StreamingResponse:
        """The same video, passed on as the service sends it (a lower time to first byte)."""
        stream = await av.tta.open(role=body.role, codec="mp4", video={"video_width": body.width})
        video = stream.stream_video()
        try:
            await stream.say(body.text).collect()
            # Wait for the first bytes here: a failure before them is still a JSON error
            # answer (see avatar_error), not a 200 cut short.
            first = await anext(video)
        except BaseException:
            await video.aclose()  # closes the stream too
            raise

        async def body_chunks() -> AsyncIterator[bytes]:
            async with video:  # a client that goes away closes the TTA session
                yield first
                async for chunk in video:
                    yield chunk

        return StreamingResponse(
            body_chunks(),
            media_type="video/mp4",
            headers={"content-disposition": 'inline; filename="avatar.mp4"'},
        )

    @app.post("/training/{conf_name}", status_code=202)
    async def start_training(
        conf_name: str, request: Request, av: Session, receiver: Receiver
    ) -> TrainingStarted:
        """Train ``conf_name`` (its training video uploaded before); the callback comes here."""
        url = callback_base(request)
        await av.digime.start_training(conf_name, callback_url=receiver.callback_url(url))
        return TrainingStarted(conf_name=conf_name, callback_url=url)

    @app.get("/training/{conf_name}")
    async def training_state(
        conf_name: str,
        av: Session,
        receiver: Receiver,
        wait: Annotated[float, Query(ge=0, le=300, description="seconds to wait for the end")] = 0,
    ) -> TrainingState:
        """The training state of ``conf_name``; with ``wait``, once it ends (at most ``wait`` s)."""
        if wait > 0:
            try:
                info = await av.digime.wait(conf_name, timeout=wait, receiver=receiver)
            except TrainingFailed as failed:
                info = (
                    failed.info
                    if isinstance(failed.info, TrainingInfo)
                    else await av.digime.status(conf_name)
                )
            except TimeoutError:
                info = await av.digime.status(conf_name)
        else:
            info = await av.digime.status(conf_name)
        return TrainingState(
            conf_name=info.conf_name,
            state=int(info.state),
            done=info.done,
            role_pic=info.role_pic,
            pre_pic=info.pre_pic,
            callback_received=receiver.latest(conf_name) is not None,
        )

    return app


app = create_app(
    callback_secret=os.environ.get("AVATARKIT_CALLBACK_SECRET") or None,
    public_url=os.environ.get("AVATARKIT_PUBLIC_URL") or None,
)
