"""SSML for TTA chat frames: a builder, a validator and subtitle styling (doc 001 §2.1, §2.2.4).

Pure: no I/O.  :class:`Speak` builds ``<speak>…</speak>`` documents with every
piece of user text escaped; :func:`validate` checks raw SSML strings (and
:meth:`Speak.validate` built ones) against the documented rules; every failure
is a :class:`~avatarkit.errors.ValidationError` with ``field="ssml"``, ``value``
a short excerpt of the first offending tag in document order and ``rule`` the
rule in words.  A builder argument of the wrong type is a ``ValidationError``
naming that argument.

Decisions where the doc is silent or ambiguous:

* Text that does not start with ``<speak`` (after an optional XML declaration
  and comments) is wrapped in ``<speak>…</speak>`` before parsing: the doc's
  own camera/background examples are bare text with inline tags.  Everything
  is parsed as XML, so even tagless text must escape ``&`` and ``<``.
* ``<!DOCTYPE``/``<!ENTITY`` (any ``<!`` other than a comment or CDATA) is
  refused before parsing: no entity expansion, no external entities.
* Pronunciation tags (``py``, ``break``, ``speed``, ``volume``, ``pitch``) lost
  their syntax in the doc's rendering; they pass through with any attributes
  and content (their content is still checked).  Every other unknown tag, and
  every undocumented attribute on a documented tag, is an error.
* ``action``, ``video``, ``camera``, ``background``, ``audio``, ``subtitle`` and
  opening/closing images must be empty (self-closing); a default-mode image must
  wrap some text.  ``time`` on an action other than ``LISTENING`` is an error;
  ``is_silence`` (even "false") and ``LISTENING`` are errors on 3D.
* Images: "at one moment a level holds at most one image" — an opening or a
  default image on a level that an open track or an enclosing default image
  shows is an error.  "Adjacent images must not share a level" — two
  consecutive image starts (opening or default, closings ignored) in document
  order must use different levels, even when the first has already ended.
  Videos: consecutive ``<video/>`` tags must use different levels (their
  duration is unknown, so "one per level at a moment" cannot be checked
  beyond that).  Images and videos have separate levels.
* Geometry: ``left``/``top`` any integer (the avatar may leave the frame, so
  may media), ``width``/``height`` >= 1, ``level`` >= 0; URLs http(s).
* ``LISTENING`` time: ``<number>s`` or ``<number>ms`` (decimals allowed),
  > 0 and <= 100 s.
* Dimension: given, or inferred from the role (COCO -> 3D, GuoXiaoyuan and
  XiaoHuan -> 2D); unknown -> dimension-specific checks are skipped.  A role's
  action catalog applies only to the three documented roles.
* Skipped action checks are said plainly (issue 9): for any other role (a
  trained avatar, whose action library doc 001 cannot list) ``<action type>``
  cannot be checked.  :func:`validate` returns an :class:`SsmlCheck` whose
  ``unchecked_actions`` lists those types, and logs a WARNING on the
  ``avatarkit.tta`` logger naming the role; pass an :class:`ActionCheckNotice`
  to say it once per stream instead of on every call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, NoReturn, Self
from urllib.parse import urlsplit

from avatarkit._redact import protected_logger
from avatarkit._schema_errors import printable, reportable
from avatarkit.errors import ValidationError
from avatarkit.tta.catalogs import ACTIONS, CAMERA_MODE, CAMERA_SCENES, FONTS
from avatarkit.tta.config import KNOWN_ROLES_2D, KNOWN_ROLES_3D

# The XML parser loads on the first validate() (building and escaping need none of it).
if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

__all__ = [
    "ACTIONS",
    "CAMERA_MODE",
    "CAMERA_SCENES",
    "FONTS",
    "PASS_THROUGH_TAGS",
    "SUBTITLE_STYLE_FIELDS",
    "ActionCheckNotice",
    "Dimension",
    "Speak",
    "SsmlCheck",
    "check_subtitle_style",
    "escape",
    "escape_attr",
    "infer_dimension",
    "subtitle",
    "validate",
]

Dimension = Literal["2d", "3d"]
"""The avatar's dimension: ``"2d"`` (GuoXiaoyuan, XiaoHuan) or ``"3d"`` (COCO); some tags
and attributes are for one of them only."""

log = protected_logger(__name__)

#: Pronunciation tags of doc 001 §2.1.4, passed through untouched.
PASS_THROUGH_TAGS: Final = frozenset({"py", "break", "speed", "volume", "pitch"})

_FIELD: Final = "ssml"
_LISTENING: Final = "LISTENING"
_MAX_LISTENING_S: Final = 100.0
_GEOMETRY: Final = ("url", "left", "top", "width", "height", "level")
_ATTRS: Final[dict[str, frozenset[str]]] = {
    "action": frozenset({"type", "time", "is_silence"}),
    "image": frozenset({"mode", "track_id", *_GEOMETRY}),
    "video": frozenset(_GEOMETRY),
    "camera": frozenset({"mode", "scene", "sensor_height"}),
    "background": frozenset({"type", "url", "transition_effect", "scene_levelmap"}),
    "audio": frozenset({"url", "format", "sample_rate", "ac"}),
    "subtitle": frozenset({"text"}),
}
_IMAGE_MODES: Final = ("default", "opening", "closing")

# XML 1.0 cannot carry these at all, not even as character references.
_NON_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Any markup declaration; comments and CDATA sections are harmless.
_DECLARATION: Final = re.compile(r"<!(?!--|\[CDATA\[)")
# Tempered tokens: a lazy ".*?" could span several comments and backtrack exponentially.
_HAS_ROOT: Final = re.compile(
    r"\s*(?:<\?xml(?:(?!\?>).)*\?>\s*)?(?:<!--(?:(?!-->).)*-->\s*)*<speak[\s/>]", re.DOTALL
)
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_INT: Final = re.compile(r"-?[0-9]+")
_NUMBER: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_TIME: Final = re.compile(r"(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s)")
_MAX_DIGITS: Final = 9
_WRAP_OPEN: Final = "<speak>"

# Excerpt limits: error text never carries more than ~80 chars of user content.
_EXCERPT_ATTR: Final = 24
_EXCERPT_TAG: Final = 60
_IN_RULE: Final = 24

_TEXT_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
# Parsers normalise whitespace in attribute values, so it travels as references.
_ATTR_ESCAPES: Final = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&apos;",
        "\r": "&#13;",
        "\n": "&#10;",
        "\t": "&#9;",
    }
)


# --- escaping and the builder ---------------------------------------------------------


def _clip(text: str, limit: int = _IN_RULE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_chars(text: str) -> None:
    bad = _NON_XML.search(text)
    if bad is not None:
        start = max(bad.start() - 20, 0)
        raise ValidationError(
            _FIELD,
            text[start : bad.start() + 20],
            f"contains U+{ord(bad.group()):04X}, which XML cannot carry",
        )


def _need_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(name, reportable(value), "must be a string")
    return value


def escape(text: str) -> str:
    """``text`` as XML character data (``&``, ``<``, ``>`` and CR escaped).

    Raises:
        ValidationError: ``text`` is not a str, or holds a character XML cannot
            carry (such as a control character or a lone surrogate).
    """
    _check_chars(_need_str("text", text))
    return text.translate(_TEXT_ESCAPES)


def escape_attr(value: str) -> str:
    """``value`` for a double- or single-quoted XML attribute.

    Quotes, ``&``, ``<``, ``>`` and whitespace other than spaces (CR, LF, tab) become
    references, so a parser reads the value back unchanged.

    Raises:
        ValidationError: ``value`` is not a str, or holds a character XML cannot
            carry (such as a control character or a lone surrogate).
    """
    _check_chars(_need_str("value", value))
    return value.translate(_ATTR_ESCAPES)


_AttrValue = str | int | float | bool | None

# The builder's attribute arguments (each named as its attribute): accepted
# types, those types in words, and whether None (leave it out) is allowed.
_STR: Final = (str,)
_INT_ARG: Final = ((int,), "an integer", False)
_ARG_TYPES: Final[dict[str, tuple[tuple[type, ...], str, bool]]] = {
    "type": (_STR, "a string", False),
    "time": (_STR, "a string such as '3s'", True),
    "is_silence": ((bool,), "a boolean", True),
    "url": (_STR, "a string", False),
    "left": _INT_ARG,
    "top": _INT_ARG,
    "width": _INT_ARG,
    "height": _INT_ARG,
    "level": _INT_ARG,
    "mode": (_STR, "a string", False),
    "track_id": ((str, int), "a string or an integer", False),
    "scene": (_STR, "a string", False),
    "sensor_height": ((str, int, float), "a string or a number", True),
    "transition_effect": (_STR, "a string", True),
    "scene_levelmap": ((str, int), "a string or an integer", True),
    "format": (_STR, "a string", False),
    "sample_rate": ((int,), "an integer", True),
    "ac": ((int,), "an integer", True),
    "text": (_STR, "a string", False),
}


def _format(method: str, name: str, value: object) -> str | None:
    """Argument ``name`` of ``Speak.<method>`` as attribute text; None to leave it out."""
    kinds, words, optional = _ARG_TYPES[name]
    if value is None:
        if optional:
            return None
        problem = "is required"
    elif isinstance(value, bool):  # before int: bool is an int subclass
        if bool in kinds:
            return "true" if value else "false"
        problem = f"must be {words}"
    elif not isinstance(value, kinds):
        problem = f"must be {words}"
    elif isinstance(value, float):
        if math.isfinite(value):
            return str(float(value))
        problem = "must be a finite number"
    elif isinstance(value, int):
        try:
            return str(int(value))
        except ValueError:  # past the int-to-str digit limit
            problem = "is too large"
    else:
        return str(value)
    raise ValidationError(name, reportable(value), f"{problem} (Speak.{method})")


def _tag(
    method: str, name: str, attrs: Mapping[str, _AttrValue], content: str | None = None
) -> str:
    """``<name a="…"/>`` (or with ``content``) for ``Speak.<method>``; None attributes left out."""
    parts = [name]
    for key, value in attrs.items():
        text = _format(method, key, value)
        if text is not None:
            parts.append(f'{key}="{escape_attr(text)}"')
    head = " ".join(parts)
    return f"<{head}/>" if content is None else f"<{head}>{content}</{name}>"


class Speak:
    """A ``<speak>`` document built call by call; ``str(doc)`` is the SSML.

    Every method appends and returns ``self``.  The builder escapes but does
    not judge: call :meth:`validate` (the rules need role and dimension).
    A ``Speak`` passed as an image's ``text`` contributes its content only.

    A builder method checks only its arguments' types: a wrong one raises
    :class:`~avatarkit.errors.ValidationError` naming the argument and the method, and
    nothing is appended.  Integers must be ints (a bool is refused); ``None`` leaves an
    optional attribute out.

    Raises:
        ValidationError: ``text`` is given and is not a str, or holds a character XML
            cannot carry.
    """

    __slots__ = ("_parts",)

    def __init__(self, text: str | None = None) -> None:
        self._parts: list[str] = []
        if text is not None:
            self.text(text)

    def text(self, text: str) -> Self:
        """Words to speak (escaped).

        Raises:
            ValidationError: ``text`` is not a str, or holds a character XML cannot
                carry (such as a control character or a lone surrogate).
        """
        self._parts.append(escape(text))
        return self

    def action(self, type: str, *, time: str | None = None, is_silence: bool | None = None) -> Self:
        """``<action type=…/>`` before the words it goes with; LISTENING needs ``time``.

        ``type`` is an id from the role's action library (:data:`ACTIONS`, doc 001 §2.1.2)
        or ``"LISTENING"`` with ``time`` (``"3s"`` or ``"3000ms"``, at most 100 s);
        ``is_silence=True`` plays the action without speech (2D only).  None of this is
        checked until :meth:`validate`.

        Raises:
            ValidationError: ``type`` is not a str, ``time`` not a str or None,
                ``is_silence`` not a bool or None, or a value holds a character XML cannot
                carry.
        """
        attrs = {"type": type, "time": time, "is_silence": is_silence}
        self._parts.append(_tag("action", "action", attrs))
        return self

    def image(
        self,
        url: str,
        *,
        left: int,
        top: int,
        width: int,
        height: int,
        level: int,
        text: str | Speak,
    ) -> Self:
        """Default-mode image, shown while ``text`` (a string or a fragment) is spoken.

        ``left``/``top``/``width``/``height`` place it in pixels of the video frame;
        ``level`` is its layer (doc 001 §2.1.3: one image per level at a time).

        Raises:
            ValidationError: ``text`` is neither a str nor a :class:`Speak`, ``url`` is not
                a str, a geometry argument is not an int (or is too large to write), or a
                value holds a character XML cannot carry.
        """
        if isinstance(text, Speak):
            content = text.fragment()
        elif isinstance(text, str):
            content = escape(text)
        else:
            raise ValidationError(
                "text", reportable(text), "must be a string or a Speak (Speak.image)"
            )
        geometry = _geometry(url, left, top, width, height, level)
        self._parts.append(_tag("image", "image", geometry, content))
        return self

    def image_open(
        self,
        track_id: str | int,
        url: str,
        *,
        left: int,
        top: int,
        width: int,
        height: int,
        level: int,
    ) -> Self:
        """``<image mode="opening"/>``: start showing an image on track ``track_id``.

        Close it with :meth:`image_close` and the same ``track_id``; tracks may overlap
        (2D only, doc 001 §2.1.3).  Geometry as in :meth:`image`.

        Raises:
            ValidationError: ``track_id`` is neither a str nor an int, ``url`` is not a
                str, a geometry argument is not an int (or is too large to write), or a
                value holds a character XML cannot carry.
        """
        attrs = {"mode": "opening", "track_id": track_id}
        geometry = _geometry(url, left, top, width, height, level)
        self._parts.append(_tag("image_open", "image", attrs | geometry))
        return self

    def image_close(self, track_id: str | int) -> Self:
        """``<image mode="closing"/>``: stop showing track ``track_id``.

        Raises:
            ValidationError: ``track_id`` is neither a str nor an int (or is too large to
                write), or holds a character XML cannot carry.
        """
        self._parts.append(_tag("image_close", "image", {"mode": "closing", "track_id": track_id}))
        return self

    def video(self, url: str, *, left: int, top: int, width: int, height: int, level: int) -> Self:
        """``<video/>``: plays from here until it ends.

        Geometry as in :meth:`image`; consecutive videos must use different levels.

        Raises:
            ValidationError: ``url`` is not a str, a geometry argument is not an int (or is
                too large to write), or a value holds a character XML cannot carry.
        """
        self._parts.append(_tag("video", "video", _geometry(url, left, top, width, height, level)))
        return self

    def camera(
        self, scene: str, *, sensor_height: str | float | None = "36.0", mode: str = CAMERA_MODE
    ) -> Self:
        """``<camera/>`` switch (3D only); ``scene`` from :data:`CAMERA_SCENES`.

        ``sensor_height`` defaults to the doc's ``"36.0"`` (``None`` leaves it out);
        ``mode`` to :data:`CAMERA_MODE`, the only documented one (doc 001 §2.1.5).

        Raises:
            ValidationError: ``scene`` or ``mode`` is not a str, ``sensor_height`` is not a
                str, a number or None (or is not finite), or a value holds a character XML
                cannot carry.
        """
        attrs = {"mode": mode, "scene": scene, "sensor_height": sensor_height}
        self._parts.append(_tag("camera", "camera", attrs))
        return self

    def background(
        self,
        url: str,
        *,
        transition_effect: str | None = None,
        scene_levelmap: str | int | None = None,
        type: str = "image",
    ) -> Self:
        """``<background/>`` switch (3D only, doc 001 §2.1.6).

        ``url`` is the image; ``type`` defaults to ``"image"``, the only documented one;
        ``transition_effect`` (e.g. ``"shutters"``) and ``scene_levelmap`` are left out
        when ``None``.

        Raises:
            ValidationError: ``url``, ``type`` or a given ``transition_effect`` is not a
                str, ``scene_levelmap`` is not a str, an int or None, or a value holds a
                character XML cannot carry.
        """
        attrs = {
            "type": type,
            "url": url,
            "transition_effect": transition_effect,
            "scene_levelmap": scene_levelmap,
        }
        self._parts.append(_tag("background", "background", attrs))
        return self

    def raw(self, markup: str) -> Self:
        """Markup inserted verbatim, e.g. pronunciation tags; checked only by :meth:`validate`.

        Raises:
            ValidationError: ``markup`` is not a str.
        """
        if not isinstance(markup, str):
            raise ValidationError("markup", reportable(markup), "must be a string (Speak.raw)")
        self._parts.append(markup)
        return self

    def audio(
        self,
        url: str,
        *,
        format: str,
        sample_rate: int | None = None,
        ac: int | None = None,
    ) -> Self:
        """``<audio/>`` drive (input_mode audio): the avatar speaks the file at ``url``.

        ``sample_rate`` (Hz) and ``ac`` (channels) are left out when ``None``.

        Raises:
            ValidationError: ``url`` or ``format`` is not a str, ``sample_rate`` or ``ac``
                is not an int or None, or a value holds a character XML cannot carry.
        """
        attrs = {"url": url, "format": format, "sample_rate": sample_rate, "ac": ac}
        self._parts.append(_tag("audio", "audio", attrs))
        return self

    def subtitle(self, text: str) -> Self:
        """``<subtitle text=…/>``: the subtitle of the audio before it (audio mode).

        Doc 001 §2.2.4.1: in audio mode, subtitles come only from these tags.

        Raises:
            ValidationError: ``text`` is not a str, or holds a character XML cannot carry.
        """
        self._parts.append(_tag("subtitle", "subtitle", {"text": text}))
        return self

    def fragment(self) -> str:
        """The content without the ``<speak>`` wrapper.  Raises nothing."""
        return "".join(self._parts)

    def __str__(self) -> str:
        return f"<speak>{self.fragment()}</speak>"

    def __repr__(self) -> str:
        return f"Speak({_clip(str(self), 60)!r})"

    def validate(self, *, role: str | None = None, dimension: Dimension | None = None) -> Self:
        """Check the document (see :func:`validate`); returns ``self``.

        Like :func:`validate`, logs a WARNING when ``role`` has no documented action
        library, so its actions could not be checked.

        Raises:
            ValidationError: the first rule the document breaks (as :func:`validate`), or
                ``role``/``dimension`` are invalid or contradict each other.
        """
        validate(str(self), role=role, dimension=dimension)
        return self


def _geometry(
    url: str, left: int, top: int, width: int, height: int, level: int
) -> dict[str, _AttrValue]:
    return {"url": url, "left": left, "top": top, "width": width, "height": height, "level": level}


# --- validation -------------------------------------------------------------------------


def infer_dimension(role: str | None) -> Dimension | None:
    """``"3d"``/``"2d"`` for the documented roles, ``None`` for any other.

    COCO is 3D; GuoXiaoyuan and XiaoHuan are 2D (doc 001 §2.1.1).  Raises nothing.
    """
    if role in KNOWN_ROLES_3D:
        return "3d"
    if role in KNOWN_ROLES_2D:
        return "2d"
    return None


def _local(name: str) -> str:
    """A tag or attribute name without its ``{namespace}``."""
    return name.rpartition("}")[2]


def _excerpt(el: ET.Element) -> str:
    """``<image mode="opening" track_id="2" …>``: the tag, short enough for an error."""
    text = f"<{_clip(_local(el.tag))}"
    for key, value in el.attrib.items():
        piece = f' {_clip(_local(key))}="{_clip(value, _EXCERPT_ATTR)}"'
        if len(text) + len(piece) > _EXCERPT_TAG:
            return text + " …>"
        text += piece
    return text + ">"


def _fail(el: ET.Element, rule: str) -> NoReturn:
    raise ValidationError(_FIELD, _excerpt(el), rule)


def _is_empty(el: ET.Element) -> bool:
    return len(el) == 0 and not (el.text or "").strip()


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class SsmlCheck:
    """What :func:`validate` checked.

    ``unchecked_actions``: the ``<action type>`` values that could not be
    checked because ``role`` has no documented action library (a trained
    avatar); empty when every action was checked.
    """

    role: str | None
    """The role the document was checked for (``None``: none given)."""
    unchecked_actions: tuple[str, ...] = ()
    """The action types that could not be checked, each once, in document order."""

    @property
    def actions_checked(self) -> bool:
        """True when :attr:`unchecked_actions` is empty.

        That is: every action was checked against the role's library, or there was no
        action, or no role was given (then no library applies and nothing is listed).
        """
        return not self.unchecked_actions


class ActionCheckNotice:
    """Says once (a WARNING per role) that a role's actions were not checked.

    A stream keeps one, so that a long session warns once, not on every say().
    """

    __slots__ = ("_warned",)

    def __init__(self) -> None:
        self._warned: set[str] = set()

    def note(self, check: SsmlCheck) -> None:
        """Log the WARNING for ``check`` unless already said for its role.

        Nothing is logged when :attr:`SsmlCheck.actions_checked` is true.
        Raises nothing.
        """
        if check.actions_checked or check.role in self._warned:
            return
        if check.role is not None:
            self._warned.add(check.role)
        _warn_unchecked(check)


def _warn_unchecked(check: SsmlCheck) -> None:
    shown = ", ".join(repr(_clip(kind)) for kind in check.unchecked_actions[:5])
    more = ", …" if len(check.unchecked_actions) > 5 else ""
    log.warning(
        "SSML action check skipped for role %r: its action library is not in doc 001 "
        "(not GuoXiaoyuan, XiaoHuan or COCO), so <action type> %s%s were not checked; "
        "the service decides",
        _clip(check.role or "", 40),
        shown,
        more,
    )


class _Checker:
    """One walk over a parsed document; raises at the first offending tag."""

    def __init__(
        self, dimension: Dimension | None, role: str | None, unmatched: set[ET.Element]
    ) -> None:
        self.dimension = dimension
        self.role = role
        self.catalog = ACTIONS.get(role) if role is not None else None
        self.unchecked: list[str] = []  # action types no catalog could check
        self.unmatched = unmatched  # openings that no later closing matches
        self.open_tracks: dict[str, int] = {}  # track_id -> level
        self.shown: dict[int, str] = {}  # image level -> what shows on it
        self.default_levels: list[int] = []  # enclosing default-mode images
        self.last_image_level: int | None = None
        self.last_video_level: int | None = None
        self.handlers: dict[str, Callable[[ET.Element], None]] = {
            "action": self.action,
            "image": self.image,
            "video": self.video,
            "camera": self.camera,
            "background": self.background,
            "audio": self.audio,
            "subtitle": self.subtitle,
        }

    def walk(self, root: ET.Element) -> None:
        # Iterative, so that deeply nested input cannot exhaust the stack.
        stack: list[tuple[ET.Element, bool]] = [(child, False) for child in reversed(root)]
        while stack:
            el, leaving = stack.pop()
            if leaving:
                self.leave(el)
                continue
            self.enter(el)
            stack.append((el, True))
            stack.extend((child, False) for child in reversed(el))

    def enter(self, el: ET.Element) -> None:
        name = _local(el.tag)
        if name in PASS_THROUGH_TAGS:
            return
        if name == "speak":
            _fail(el, "<speak> may only be the root element")
        handler = self.handlers.get(name)
        if handler is None:
            known = ", ".join(sorted([*self.handlers, *PASS_THROUGH_TAGS]))
            _fail(el, f"unknown tag <{_clip(name)}>; known tags: speak, {known}")
        self.attributes(el, name)
        handler(el)

    def leave(self, el: ET.Element) -> None:
        if _local(el.tag) == "image" and el.get("mode", "default") == "default":
            del self.shown[self.default_levels.pop()]

    # -- helpers --

    def attributes(self, el: ET.Element, name: str) -> None:
        allowed = _ATTRS[name]
        for key in el.attrib:
            if key not in allowed:
                names = ", ".join(sorted(allowed))
                _fail(el, f"<{name}> has no attribute {_clip(key)!r}; allowed: {names}")

    def self_closing(self, el: ET.Element, what: str) -> None:
        if not _is_empty(el):
            _fail(el, f"{what} must be self-closing (no text or tags inside)")

    def only_3d(self, el: ET.Element, what: str) -> None:
        if self.dimension == "2d":
            _fail(el, f"{what} is 3D only (doc 001 §2.1.5/§2.1.6)")

    def not_3d(self, el: ET.Element, what: str) -> None:
        if self.dimension == "3d":
            _fail(el, f"{what} is not supported on 3D")

    def required(self, el: ET.Element, attr: str) -> str:
        value = el.get(attr)
        if value is None or not value.strip():
            _fail(el, f"<{_local(el.tag)}> needs a non-empty {attr}")
        return value

    def integer(self, el: ET.Element, attr: str, minimum: int | None = None) -> int:
        value = self.required(el, attr)
        if not _INT.fullmatch(value):
            _fail(el, f"{attr} must be an integer")
        if len(value.lstrip("-")) > _MAX_DIGITS:
            _fail(el, f"{attr} is out of range (at most {_MAX_DIGITS} digits)")
        number = int(value)
        if minimum is not None and number < minimum:
            _fail(el, f"{attr} must be >= {minimum}")
        return number

    def optional_positive(self, el: ET.Element, attr: str, *, integer: bool) -> None:
        value = el.get(attr)
        if value is None:
            return
        pattern = _INT if integer else _NUMBER
        if not pattern.fullmatch(value) or len(value) > _MAX_DIGITS or float(value) <= 0:
            kind = "integer" if integer else "number"
            _fail(el, f"{attr} must be a positive {kind}")

    def url(self, el: ET.Element) -> None:
        if not _is_url(self.required(el, "url")):
            _fail(el, "url must be an http:// or https:// URL")

    def geometry(self, el: ET.Element) -> int:
        """Check url/left/top/width/height/level; return the level."""
        self.url(el)
        self.integer(el, "left")
        self.integer(el, "top")
        self.integer(el, "width", 1)
        self.integer(el, "height", 1)
        return self.integer(el, "level", 0)

    # -- tags --

    def action(self, el: ET.Element) -> None:
        self.self_closing(el, "<action>")
        kind = self.required(el, "type")
        if kind == _LISTENING:
            self.not_3d(el, "LISTENING")
            if el.get("time") is None:
                _fail(el, "LISTENING needs time, e.g. '3s' or '3000ms'")
            self.listening_time(el, el.get("time", ""))
        else:
            if "time" in el.attrib:
                _fail(el, "time is only for LISTENING actions")
            if self.catalog is None:
                if self.role is not None and kind not in self.unchecked:
                    self.unchecked.append(kind)
            elif kind not in self.catalog:
                _fail(el, f"action type {_clip(kind)!r} is not in {self.role}'s action library")
        silence = el.get("is_silence")
        if silence is not None:
            self.not_3d(el, "is_silence")
            if silence not in ("true", "false"):
                _fail(el, "is_silence must be 'true' or 'false'")

    def listening_time(self, el: ET.Element, value: str) -> None:
        match = _TIME.fullmatch(value)
        if match is None:
            _fail(el, "time must be a number of seconds or milliseconds, e.g. '3s' or '3000ms'")
        seconds = float(match["n"]) / (1000 if match["unit"] == "ms" else 1)
        if not 0 < seconds <= _MAX_LISTENING_S:
            _fail(el, "time must be > 0 and at most 100 s")

    def image(self, el: ET.Element) -> None:
        if self.default_levels:
            _fail(el, "a default-mode <image> must not contain another <image>")
        mode = el.get("mode", "default")
        if mode not in _IMAGE_MODES:
            _fail(el, "image mode must be 'default', 'opening' or 'closing'")
        if mode != "default":
            self.not_3d(el, "multi-track images (mode opening/closing)")
        if mode == "closing":
            self.closing(el)
            return
        level = self.geometry(el)
        track_id = ""
        if mode == "opening":
            self.self_closing(el, "an opening <image>")
            track_id = self.required(el, "track_id")
            if track_id in self.open_tracks:
                _fail(el, f"track_id {_clip(track_id)!r} is already open")
            if el in self.unmatched:
                _fail(el, f"track_id {_clip(track_id)!r} is opened but never closed")
        else:
            if "track_id" in el.attrib:
                _fail(el, "track_id is only for mode 'opening'/'closing'")
            if not "".join(el.itertext()).strip():
                _fail(el, "a default-mode <image> must wrap the text it is shown with")
        if level in self.shown:
            _fail(el, f"level {level} already shows an image ({self.shown[level]})")
        if level == self.last_image_level:
            _fail(el, f"adjacent images must not share a level (both on level {level})")
        self.last_image_level = level
        if mode == "opening":
            self.open_tracks[track_id] = level
            self.shown[level] = f"track {_clip(track_id)!r}"
        else:
            self.default_levels.append(level)
            self.shown[level] = "an enclosing default-mode image"

    def closing(self, el: ET.Element) -> None:
        extra = sorted(set(el.attrib) - {"mode", "track_id"})
        if extra:
            _fail(el, f"a closing <image> takes only mode and track_id, not {', '.join(extra)}")
        self.self_closing(el, "a closing <image>")
        track_id = self.required(el, "track_id")
        level = self.open_tracks.pop(track_id, None)
        if level is None:
            _fail(el, f"closing track_id {_clip(track_id)!r} matches no open opening")
        del self.shown[level]

    def video(self, el: ET.Element) -> None:
        self.self_closing(el, "<video>")
        level = self.geometry(el)
        if level == self.last_video_level:
            _fail(el, f"adjacent videos must not share a level (both on level {level})")
        self.last_video_level = level

    def camera(self, el: ET.Element) -> None:
        self.only_3d(el, "<camera>")
        self.self_closing(el, "<camera>")
        if self.required(el, "mode") != CAMERA_MODE:
            _fail(el, f"camera mode must be {CAMERA_MODE!r}")
        if self.required(el, "scene") not in CAMERA_SCENES:
            _fail(el, f"camera scene must be one of {', '.join(CAMERA_SCENES)}")
        self.optional_positive(el, "sensor_height", integer=False)

    def background(self, el: ET.Element) -> None:
        self.only_3d(el, "<background>")
        self.self_closing(el, "<background>")
        if self.required(el, "type") != "image":
            _fail(el, "background type must be 'image'")
        self.url(el)
        # transition_effect and scene_levelmap: only examples are documented.
        for attr in ("transition_effect", "scene_levelmap"):
            if attr in el.attrib:
                self.required(el, attr)

    def audio(self, el: ET.Element) -> None:
        self.self_closing(el, "<audio>")
        self.url(el)
        self.required(el, "format")
        self.optional_positive(el, "sample_rate", integer=True)
        self.optional_positive(el, "ac", integer=True)

    def subtitle(self, el: ET.Element) -> None:
        self.self_closing(el, "<subtitle>")
        self.required(el, "text")


def _unmatched_openings(root: ET.Element) -> set[ET.Element]:
    """Openings that no later closing of the same track_id ends (paired like the walk)."""
    open_: dict[str, ET.Element] = {}
    for el in root.iter():
        if _local(el.tag) != "image" or "track_id" not in el.attrib:
            continue
        mode, track_id = el.get("mode"), el.attrib["track_id"]
        if mode == "opening":
            open_.setdefault(track_id, el)
        elif mode == "closing":
            open_.pop(track_id, None)
    return set(open_.values())


def _parse_error(text: str, wrapped: bool, exc: ET.ParseError) -> ValidationError:
    line, column = exc.position
    if wrapped and line == 1:
        column -= len(_WRAP_OPEN)
    lines = _LINE_BREAK.split(text)
    source = lines[min(line, len(lines)) - 1]
    column = min(max(column, 0), len(source))
    excerpt = source[max(column - 20, 0) : column + 20]
    from xml.parsers import expat

    reason = expat.ErrorString(exc.code) or "parse error"
    return ValidationError(
        _FIELD, excerpt, f"malformed XML ({reason}) at line {line}, column {column + 1}"
    )


def _parse(text: str) -> ET.Element:
    import xml.etree.ElementTree as ET

    _check_chars(text)
    declaration = _DECLARATION.search(text)
    if declaration is not None:
        start = declaration.start()
        raise ValidationError(
            _FIELD, text[start : start + 40], "DOCTYPE/ENTITY declarations are not allowed"
        )
    # Bare text with inline tags is how the doc writes camera/background examples.
    wrapped = _HAS_ROOT.match(text) is None
    source = f"{_WRAP_OPEN}{text}</speak>" if wrapped else text
    try:
        root = ET.fromstring(source)
    except ET.ParseError as exc:
        raise _parse_error(text, wrapped, exc) from None
    except ValueError as exc:  # encoding trouble the character check missed
        raise ValidationError(_FIELD, None, f"cannot be parsed as XML: {exc}") from None
    if _local(root.tag) != "speak":
        _fail(root, "the root element must be <speak>")
    return root


def _resolve_dimension(role: str | None, dimension: object) -> Dimension | None:
    if role is not None and not isinstance(role, str):
        raise ValidationError("role", reportable(role), "must be a string")
    inferred = infer_dimension(role)
    if dimension is None:
        return inferred
    if dimension not in ("2d", "3d"):
        raise ValidationError("dimension", reportable(dimension), "must be '2d', '3d' or None")
    if inferred is not None and inferred != dimension:
        raise ValidationError("dimension", dimension, f"role {role} is a {inferred.upper()} role")
    return "2d" if dimension == "2d" else "3d"


def validate(
    ssml_text: str,
    *,
    role: str | None = None,
    dimension: Dimension | None = None,
    notice: ActionCheckNotice | None = None,
) -> SsmlCheck:
    """Check SSML (or plain text) against doc 001 §2.1; raise ValidationError on the first fault.

    ``role`` selects the action catalog (GuoXiaoyuan, XiaoHuan, COCO) and, with
    ``dimension`` unset, the dimension.  For any other role the action types
    cannot be checked: the result's ``unchecked_actions`` lists them and a
    WARNING says so (once per role per ``notice``; on every call without one).

    Raises:
        ValidationError: ``ssml_text`` is not a str; ``role`` is not a str or None;
            ``dimension`` is not ``"2d"``, ``"3d"`` or None, or contradicts the role's;
            the text holds a character XML cannot carry, a DOCTYPE/ENTITY declaration or
            malformed XML; or the first tag that breaks a rule (an unknown tag or
            attribute, an action not in the role's library, a 3D-only tag on 2D…).  The
            error's ``value`` is an excerpt of that tag.
    """
    if not isinstance(ssml_text, str):
        raise ValidationError(_FIELD, type(ssml_text).__name__, "must be a string")
    resolved = _resolve_dimension(role, dimension)
    root = _parse(ssml_text)
    checker = _Checker(resolved, role, _unmatched_openings(root))
    checker.walk(root)
    check = SsmlCheck(role, tuple(checker.unchecked))
    if not check.actions_checked:
        if notice is not None:
            notice.note(check)
        else:
            _warn_unchecked(check)
    return check


# --- subtitle styling (doc 001 §2.2.4.1) ------------------------------------------------

_STYLE_BOOLS: Final = ("bold", "italic", "underline")
_STYLE_COLOURS: Final = ("primary_colour", "outline_colour", "back_colour")
_STYLE_MARGINS: Final = ("margin_l", "margin_r", "margin_v")
#: Fields of ``subtitle.global_style``.
SUBTITLE_STYLE_FIELDS: Final = (
    "fontname",
    "fontsize",
    *_STYLE_BOOLS,
    *_STYLE_COLOURS,
    *_STYLE_MARGINS,
)
_STYLE_PATH: Final = "subtitle.global_style"
_COLOUR: Final = re.compile(r"[0-9A-Fa-f]{8}")
_FONTS_FOLDED: Final = {font.casefold(): font for font in FONTS}


def _int_at_least(value: object, minimum: int) -> bool:
    # bool is an int subclass, but true/false is never a size.
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _style_problem(key: str, value: object) -> str | None:
    """The rule ``value`` breaks for style field ``key``, or None."""
    if key == "fontname":
        if not isinstance(value, str):
            return "must be a string"
        if value in FONTS:
            return None
        close = _FONTS_FOLDED.get(value.casefold())
        hint = f" (did you mean {close!r}?)" if close else ""
        return f"is not a supported subtitle font (doc 001 §2.2.4.2){hint}"
    if key == "fontsize":
        return None if _int_at_least(value, 1) else "must be a positive integer"
    if key in _STYLE_BOOLS:
        return None if isinstance(value, bool) else "must be a boolean"
    if key in _STYLE_COLOURS:
        ok = isinstance(value, str) and _COLOUR.fullmatch(value) is not None
        return None if ok else "must be 8 hex digits AABBGGRR (alpha, blue, green, red)"
    if key in _STYLE_MARGINS:
        return None if _int_at_least(value, 0) else "must be a non-negative integer"
    return f"unknown subtitle style field; known: {', '.join(SUBTITLE_STYLE_FIELDS)}"


def check_subtitle_style(style: Mapping[str, object]) -> dict[str, object]:
    """Check a ``global_style`` object; return a plain copy (``None`` fields dropped).

    The rules (doc 001 §2.2.4.1): ``fontname`` one of :data:`FONTS` (exact name),
    ``fontsize`` an int >= 1, ``bold``/``italic``/``underline`` bools, the colours 8 hex
    digits ``AABBGGRR`` (alpha first, ``00`` transparent, ``ff`` opaque), the margins
    ``margin_l``/``margin_r``/``margin_v`` ints >= 0, in pixels.

    Raises:
        ValidationError: ``style`` is not a mapping, a key is not a str or not one of
            :data:`SUBTITLE_STYLE_FIELDS`, or a value breaks its field's rule (a font name
            that differs from a supported one only in case gets "did you mean …?").
    """
    if not isinstance(style, Mapping):
        raise ValidationError(_STYLE_PATH, type(style).__name__, "must be an object")
    checked: dict[str, object] = {}
    for key, value in style.items():
        if not isinstance(key, str):
            raise ValidationError(_STYLE_PATH, reportable(key), "field names must be strings")
        if value is None and key in SUBTITLE_STYLE_FIELDS:
            continue  # None means "not set", as in the session config
        problem = _style_problem(key, value)
        if problem is not None:
            field = printable(f"{_STYLE_PATH}.{_clip(key, 40)}")
            raise ValidationError(field, reportable(value), problem)
        checked[key] = value
    return checked


def subtitle(
    style: Mapping[str, object] | None = None, **fields: object
) -> dict[str, dict[str, object]]:
    """``{"global_style": {…}}`` for ``frames.encode_styled_chat``.

    ``fields`` (keyword style fields) override those in ``style``.  The styling
    applies to every subtitle of the session, in text mode (doc 001 §2.2.4.1).

    Raises:
        ValidationError: ``style`` is given and is not a mapping, or the merged fields
            break a rule of :func:`check_subtitle_style`.
    """
    if style is not None and not isinstance(style, Mapping):
        raise ValidationError(_STYLE_PATH, type(style).__name__, "must be an object")
    merged: dict[str, object] = dict(style or {})
    merged.update(fields)
    return {"global_style": check_subtitle_style(merged)}
