"""``session.tta``: opens TTA streams."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, Unpack
from urllib.parse import quote

from avatarkit._retry import RetryPolicy
from avatarkit.errors import ValidationError
from avatarkit.tta.config import KNOWN_ROLES_3D, ConfigFields, SessionConfig, make_config
from avatarkit.tta.limits import StreamLimits

if TYPE_CHECKING:
    from avatarkit.tta._proxy import WsOptions

    # The stream (and with it the WebSocket client, SSML, audio) loads on the first open().
    from avatarkit.tta.stream import StreamOwner, TtaStream

__all__ = ["TtaClient", "tta_url"]

Dimension = Literal["2d", "3d"]


class _Default:
    """The type of :data:`DEFAULT`: "not given" where None has a meaning of its own."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _Default()


def tta_url(base: str, dimension: Dimension, appid: str, token: str) -> str:
    """The TTA WebSocket URL; it carries the token, so only ever log it redacted."""
    return (
        f"{base.rstrip('/')}/{dimension}?appid={quote(appid, safe='')}"
        f"&access_token={quote(token, safe='')}"
    )


class TtaClient:
    """Opens :class:`~avatarkit.tta.stream.TtaStream` objects on a session."""

    def __init__(
        self,
        owner: StreamOwner,
        *,
        base_url: str,
        appid: str,
        token: str,
        retry: RetryPolicy,
        limits: StreamLimits | None = None,
        ws: WsOptions | None = None,
    ) -> None:
        self._owner = owner
        self._ws = ws
        self.limits = limits or StreamLimits()
        """The bounds each stream starts with (the session's ``stream_limits``)."""
        self._base_url = base_url
        self._appid = appid
        self._token = token
        self._retry = retry

    def __repr__(self) -> str:
        return f"TtaClient(base_url={self._base_url!r})"

    def open(
        self,
        role: str | None = None,
        *,
        config: SessionConfig | Mapping[str, object] | None = None,
        dimension: Dimension | None = None,
        queue_size: int | None = None,
        buffer_bytes: int | None = None,
        max_frame_bytes: int | None = None,
        open_timeout: float | None = None,
        close_timeout: float | None = None,
        idle_timeout: float | None = None,
        ping_interval: float | _Default | None = DEFAULT,
        ping_timeout: float | _Default | None = DEFAULT,
        strict_role: bool = True,
        **fields: Unpack[ConfigFields],
    ) -> TtaStream:
        """A TTA stream for ``role``; use it as ``async with`` (or ``await`` it).

        ``fields`` are session-config fields (``codec="mp4"``,
        ``video={"video_width": 720}``…) checked against every documented rule
        before anything is sent.  ``dimension`` picks the 2d or 3d endpoint
        (default: 3d for the documented 3D roles, else 2d).

        ``role`` may be a catalog role or your own avatar's id (a trained
        digime's conf_name): unknown names go to the service, which decides.
        A near miss of a catalog name (``guoxiaoyuan``) is refused here with
        "did you mean 'GuoXiaoyuan'?"; ``strict_role=False`` sends it anyway.

        The other keywords override the session's
        :class:`~avatarkit.tta.limits.StreamLimits` for this stream:
        ``idle_timeout`` (the longest silence while an utterance or the
        production is under way), ``ping_interval``/``ping_timeout`` (keepalive;
        None disables), ``queue_size``/``buffer_bytes`` (events and payload bytes
        buffered before reading pauses), ``max_frame_bytes``, ``open_timeout``,
        ``close_timeout``.

        Nothing is sent until the stream is opened (``async with`` or ``await``);
        what opening raises is in :meth:`TtaStream.open`.

        Raises:
            ValidationError: a config field or limit breaks its rule (the error
                names the field, the value and the rule), the role is a near miss
                of a catalog role, or ``dimension`` is not ``'2d'``/``'3d'``.
        """
        overrides: dict[str, Any] = {
            name: value
            for name, value in (
                ("queue_size", queue_size),
                ("buffer_bytes", buffer_bytes),
                ("max_frame_bytes", max_frame_bytes),
                ("open_timeout", open_timeout),
                ("close_timeout", close_timeout),
                ("idle_timeout", idle_timeout),
            )
            if value is not None
        }
        if not isinstance(ping_interval, _Default):
            overrides["ping_interval"] = ping_interval
        if not isinstance(ping_timeout, _Default):
            overrides["ping_timeout"] = ping_timeout
        limits = self.limits.replace(**overrides) if overrides else self.limits
        cfg = make_config(role, config=config, strict_role=strict_role, **fields)
        if cfg.appid is None:
            cfg = make_config(config=cfg, appid=self._appid, strict_role=strict_role)
        dim: Dimension = dimension or ("3d" if cfg.role in KNOWN_ROLES_3D else "2d")
        if dim not in ("2d", "3d"):
            raise ValidationError("dimension", dim, "must be '2d' or '3d'")
        from avatarkit.tta.stream import TtaStream

        return TtaStream(
            self._owner,
            url=tta_url(self._base_url, dim, self._appid, self._token),
            resource_id=f"volc.avatar.{dim}",
            config=cfg,
            retry_policy=self._retry,
            limits=limits,
            ws=self._ws,
        )
