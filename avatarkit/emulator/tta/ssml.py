"""Chat SSML as the emulator reads doc 001 — its own reading, not the SDK's.

Pure: no I/O.  :func:`parse_chat_ssml` parses a chat and refuses what doc 001 says is
invalid, raising :class:`~avatarkit.emulator.tta.errors.ChatRejected` (MSG 1001, type 2);
:func:`visual_spans` says when each image and video shows.

The emulator refuses only what the document rules out; the SDK's validator is stricter
(it refuses before any I/O what it cannot vouch for), which is its own business:

* Not XML (§2.1: "文本驱动支持纯文本和ssml"): text is wrapped in ``<speak>`` when it does
  not start with one (the doc's §2.1.5/§2.1.6 examples are bare text with tags); what is
  still not well-formed is refused.  ``<!DOCTYPE``/``<!ENTITY`` are refused unparsed.
* ``<action type>`` (§2.1.2 "支持的动作见下动作库"): for a catalog role, a type outside its
  library is refused; for any other role (a trained digime) the library is unknown and the
  type is not checked.  ``LISTENING`` needs ``time`` ("使用该动作时time字段必填"), ``3s`` or
  ``3000ms``, at most 100 s ("time最长为100s"); ``LISTENING`` and ``is_silence`` are
  refused on 3D ("3D暂不支持").
* ``<image>`` (§2.1.3): a default-mode image must not contain another image (the doc's
  "错误示例"); opening/closing pair by ``track_id`` ("一一对应"): a closing without an open
  opening, or an opening never closed, is refused; multi-track modes are 2D only
  ("支持多轨道:(3D暂不支持)"); "同一时刻一个level最多支持出现一张图片,相邻图片的level不能相同":
  an image starting on a level that shows one, or on the level of the image started just
  before it, is refused.  ``<video>`` likewise: consecutive videos on one level.
  Geometry (left/top/width/height/level), when given, must be integers.
* ``<camera>`` (§2.1.5) and ``<background>`` (§2.1.6) are 3D only ("仅3D支持"); camera
  scenes are the three listed.
* Silent actions (§2.1.2 "支持静默作为单个动作(例如3s)", "支持通过…is_silence…控制动作单独
  呈现"): a chat of only ``LISTENING`` or ``is_silence="true"`` actions is accepted and
  plays silence: the LISTENING time, and :data:`SILENT_ACTION_MS` per silent action (the
  doc gives no action lengths).
* Other tags (pronunciation tags of §2.1.4, whose syntax the doc lost, and any other) are
  spoken through: their text is said, the tag is ignored.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Final, Literal

from avatarkit.emulator import media
from avatarkit.emulator.tta.errors import ChatRejected
from avatarkit.emulator.tta.models import ACTIONS, CAMERA_MODE, CAMERA_SCENES

__all__ = ["SILENT_ACTION_MS", "ChatSsml", "Span", "parse_chat_ssml", "visual_spans"]

Dimension = Literal["2d", "3d"]
Span = tuple[int, int, int, int, int, int]  # start_ms, end_ms, left, top, width, height

VIDEO_OVERLAY_MS: Final = 2000  # a <video/> clip is not fetched: its box shows this long
SILENT_ACTION_MS: Final = 1000  # an is_silence action plays this long (undocumented)
_LISTENING: Final = "LISTENING"
_TIME: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s)")
_INT: Final = re.compile(r"-?[0-9]{1,9}")
_DECLARATION: Final = re.compile(r"<!(?!--|\[CDATA\[)")
_ROOT: Final = re.compile(r"\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<speak[\s/>]", re.DOTALL)


def _tag(el: ET.Element) -> str:
    attrs = " ".join(f'{k}="{v[:24]}"' for k, v in list(el.attrib.items())[:4])
    return f"<{el.tag}{' ' + attrs if attrs else ''}>"


def _reject(el: ET.Element, rule: str) -> ChatRejected:
    return ChatRejected(f"invalid SSML: {_tag(el)}: {rule}")


def parse(body: str) -> ET.Element:
    """The chat as an XML tree rooted at ``<speak>`` (bare text is wrapped)."""
    if _DECLARATION.search(body):
        raise ChatRejected("invalid SSML: DOCTYPE/ENTITY declarations are not allowed")
    source = body if _ROOT.match(body) else f"<speak>{body}</speak>"
    try:
        root = ET.fromstring(source)
    except ET.ParseError as exc:
        raise ChatRejected(f"invalid SSML: not well-formed XML ({exc})") from None
    if root.tag != "speak":
        raise ChatRejected("invalid SSML: the root element must be <speak>")
    return root


class _Check:
    def __init__(self, role: str | None, dimension: Dimension) -> None:
        self.actions = ACTIONS.get(role) if role is not None else None
        self.role = role
        self.dimension = dimension
        self.tracks: dict[str, int | None] = {}  # open track_id -> level
        self.shown: set[int] = set()  # image levels showing now
        self.last_image: int | None = None
        self.last_video: int | None = None
        self.silence_ms = 0  # LISTENING times and silent actions

    def walk(self, el: ET.Element, in_default_image: bool) -> None:
        for child in el:
            handler = getattr(self, f"on_{child.tag}", None)
            if child.tag == "image":
                self.on_image(child, in_default_image)
            elif handler is not None:
                handler(child)
                self.walk(child, in_default_image)
            else:  # pronunciation tags (§2.1.4) and anything else: spoken through
                self.walk(child, in_default_image)

    def integer(self, el: ET.Element, attr: str) -> int | None:
        value = el.get(attr)
        if value is None:
            return None
        if not _INT.fullmatch(value.strip()):
            raise _reject(el, f"{attr} must be an integer")
        return int(value)

    def on_action(self, el: ET.Element) -> None:
        kind = el.get("type")
        if not kind:
            raise _reject(el, "<action> needs a type (doc 001 §2.1.2)")
        silence = el.get("is_silence")
        if silence is not None and self.dimension == "3d":
            raise _reject(el, "is_silence is not supported on 3D (doc 001 §2.1.2)")
        if kind == _LISTENING:
            if self.dimension == "3d":
                raise _reject(el, "LISTENING is not supported on 3D (doc 001 §2.1.2)")
            time = el.get("time")
            match = _TIME.fullmatch(time.strip()) if time is not None else None
            if match is None:
                raise _reject(el, "LISTENING needs time such as '3s' or '3000ms' (doc 001 §2.1.2)")
            seconds = float(match[1]) / (1000 if match[2] == "ms" else 1)
            if not 0 < seconds <= 100:
                raise _reject(el, "LISTENING time must be > 0 and at most 100 s (doc 001 §2.1.2)")
            self.silence_ms += round(seconds * 1000)
        elif self.actions is not None and kind not in self.actions:
            raise _reject(el, f"action type {kind[:24]!r} is not in {self.role}'s action library")
        if kind != _LISTENING and silence == "true":
            self.silence_ms += SILENT_ACTION_MS

    def on_image(self, el: ET.Element, in_default_image: bool) -> None:
        if in_default_image:
            raise _reject(el, "a default-mode <image> must not contain another image")
        mode = el.get("mode", "default")
        if mode not in ("default", "opening", "closing"):
            raise _reject(el, "mode must be default, opening or closing")
        if mode != "default" and self.dimension == "3d":
            raise _reject(el, "multi-track images are not supported on 3D (doc 001 §2.1.3)")
        track = el.get("track_id")
        if mode == "closing":
            if track not in self.tracks:
                raise _reject(el, f"closing track_id {track!r} matches no open opening")
            level = self.tracks.pop(track)
            if level is not None:
                self.shown.discard(level)
            return
        level = self.geometry(el)
        if level is not None:
            if level in self.shown:
                raise _reject(el, f"level {level} already shows an image at this moment")
            if level == self.last_image:
                raise _reject(el, f"adjacent images must not share a level ({level})")
            self.last_image = level
        if mode == "opening":
            if not track:
                raise _reject(el, "an opening <image> needs a track_id")
            if track in self.tracks:
                raise _reject(el, f"track_id {track!r} is already open")
            self.tracks[track] = level
            if level is not None:
                self.shown.add(level)
            self.walk(el, in_default_image)
            return
        if level is not None:
            self.shown.add(level)
        self.walk(el, True)
        if level is not None:
            self.shown.discard(level)

    def geometry(self, el: ET.Element) -> int | None:
        if not el.get("url"):
            raise _reject(el, f"<{el.tag}> needs a url")
        for attr in ("left", "top", "width", "height"):
            self.integer(el, attr)
        return self.integer(el, "level")

    def on_video(self, el: ET.Element) -> None:
        level = self.geometry(el)
        if level is not None and level == self.last_video:
            raise _reject(el, f"adjacent videos must not share a level ({level})")
        self.last_video = level

    def on_camera(self, el: ET.Element) -> None:
        if self.dimension != "3d":
            raise _reject(el, "<camera> is 3D only (doc 001 §2.1.5)")
        if el.get("mode", CAMERA_MODE) != CAMERA_MODE:
            raise _reject(el, f"camera mode must be {CAMERA_MODE}")
        if el.get("scene") not in CAMERA_SCENES:
            raise _reject(el, f"camera scene must be one of {', '.join(sorted(CAMERA_SCENES))}")

    def on_background(self, el: ET.Element) -> None:
        if self.dimension != "3d":
            raise _reject(el, "<background> is 3D only (doc 001 §2.1.6)")
        if not el.get("url"):
            raise _reject(el, "<background> needs a url")


@dataclass(frozen=True, slots=True)
class ChatSsml:
    root: ET.Element
    silence_ms: int  # what silent actions (LISTENING, is_silence) last


def parse_chat_ssml(body: str, role: str | None, dimension: Dimension) -> ChatSsml:
    """Parse a text-mode chat and apply doc 001's SSML rules."""
    root = parse(body)
    check = _Check(role, dimension)
    check.walk(root, False)
    if check.tracks:
        track = next(iter(check.tracks))
        raise ChatRejected(f"invalid SSML: opening track_id {track!r} is never closed")
    return ChatSsml(root, check.silence_ms)


def visual_spans(root: ET.Element) -> list[Span]:
    """When each image/video shows: from where its tag falls in the speech timing."""
    spans: list[Span] = []
    said: list[str] = []
    tracks: dict[str, tuple[int, tuple[int, int, int, int]]] = {}

    def now() -> int:
        return media.speech_duration_ms(media.plain_text("".join(said)))

    def box(el: ET.Element) -> tuple[int, int, int, int] | None:
        try:
            return (
                int(el.get("left", "")),
                int(el.get("top", "")),
                int(el.get("width", "")),
                int(el.get("height", "")),
            )
        except ValueError:
            return None

    def walk(el: ET.Element) -> None:
        if el.text:
            said.append(el.text)
        for child in el:
            mode = child.get("mode", "default")
            geometry = box(child)
            if child.tag == "image" and mode == "opening" and geometry:
                tracks[child.get("track_id", "")] = (now(), geometry)
            elif child.tag == "image" and mode == "closing":
                opened = tracks.pop(child.get("track_id", ""), None)
                if opened is not None:
                    spans.append((opened[0], now(), *opened[1]))
            elif child.tag == "image" and geometry:
                start = now()
                walk(child)
                spans.append((start, now(), *geometry))
            elif child.tag == "video" and geometry:
                start = now()
                spans.append((start, start + VIDEO_OVERLAY_MS, *geometry))
            else:
                walk(child)
            if child.tail:
                said.append(child.tail)

    walk(root)
    return spans
