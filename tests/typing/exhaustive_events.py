"""Checked by mypy --strict and pyright strict in CI (.ci/run), not run: a match over every event
type ends in assert_never, so a new event type the SDK adds fails here first."""

from __future__ import annotations

from typing import assert_never

from avatarkit import events


def describe(event: events.Event) -> str:
    match event:
        case events.AudioChunk(pcm=pcm):
            return f"audio {len(pcm)}"
        case events.VideoChunk(nal=nal):
            return f"video {len(nal)}"
        case events.MediaChunk(data=data):
            return f"media {len(data)}"
        case events.MediaEnd():
            return "media end"
        case events.VoiceStart() | events.VoiceEnd():
            return "voice"
        # SubtitleOn and SubtitleOff.  pyright narrows a base-class pattern away only
        # without sub-patterns: ``Subtitle(text=text)`` would leave both in the union.
        case events.Subtitle() as subtitle:
            return subtitle.text
        case events.AllSubtitles(subtitles=subtitles):
            return str(len(subtitles))
        case events.VideoUrl(url=url):
            return url
        case events.Status(code=code):
            return str(code)
        case events.Unknown(header=header):
            return header
        case _:
            assert_never(event)


def base_class_checks(value: object) -> bool:
    return isinstance(value, events.EventBase) and isinstance(value, events.Event)
