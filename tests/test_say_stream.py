"""Speech from streamed text: the sentence splitter (pure, hypothesis) and
``stream.say_stream()`` against the emulator over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avatarkit import ValidationError, events
from avatarkit.emulator import Emulator
from avatarkit.tta.sentences import SentenceSplitter
from tests.conftest import SMALL_VIDEO, session_for

# -- the splitter -------------------------------------------------------------------------


def split(text: str, pieces: list[int] | None = None, max_chars: int = 80) -> list[str]:
    """The sentences of ``text`` fed in pieces of the given sizes (all at once if None)."""
    splitter = SentenceSplitter(max_chars=max_chars)
    out: list[str] = []
    start = 0
    for size in pieces or [len(text)]:
        out += splitter.feed(text[start : start + size])
        start += size
    out += splitter.feed(text[start:])
    rest = splitter.flush()
    return [*out, rest] if rest else out


def test_chinese_and_latin_sentences() -> None:
    assert split("今天天气真不错。明天呢？“好啊！”他说。") == [
        "今天天气真不错。",
        "明天呢？",
        "“好啊！”",
        "他说。",
    ]
    assert split("It costs 3.14 dollars. Really? Yes!") == [
        "It costs 3.14 dollars.",
        " Really?",
        " Yes!",
    ]
    assert split("等一下……好的。") == ["等一下……", "好的。"]
    assert split("第一行\n第二行") == ["第一行\n", "第二行"]


def test_a_sentence_is_sent_once_the_next_character_shows_it_is_complete() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("你好。") == []  # a closing quote may still follow
    assert splitter.feed("再") == ["你好。"]
    assert splitter.feed("见") == []
    assert splitter.flush() == "再见"


def test_run_on_text_is_cut_at_a_pause_or_at_the_limit() -> None:
    text = "一二三四五六七八，九十一二三四五六七八九十"
    assert split(text, max_chars=10) == ["一二三四五六七八，", "九十一二三四五六七八", "九十"]
    assert split("x" * 25, max_chars=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_max_chars_is_checked() -> None:
    for bad in (1, 0, True, 2.5):
        with pytest.raises(ValidationError, match="max_chars"):
            SentenceSplitter(max_chars=bad)  # type: ignore[arg-type]


_ALPHABET = st.sampled_from(list("今天好不错abc xyz.。！？!?;；，,…”」)\n3"))


@given(
    st.text(_ALPHABET, max_size=300),
    st.lists(st.integers(0, 12), max_size=60),
    st.integers(2, 40),
)
def test_the_cuts_do_not_depend_on_the_fragments(text: str, pieces: list[int], limit: int) -> None:
    whole = split(text, max_chars=limit)
    assert "".join(whole) == text  # nothing lost, nothing added
    assert split(text, pieces, max_chars=limit) == whole
    for sentence in whole:
        body = sentence.rstrip("。！？；…!?;\n\"'”’」』）)】》〉]")
        assert len(body) <= limit  # at most the limit, besides its closing marks


# -- say_stream against the emulator -------------------------------------------------------

TOKENS = ["今天", "天气", "真不错", "。", "我们", "去公园", "散步吧", "！", "好", "的"]


async def tokens(items: list[str] = TOKENS) -> AsyncIterator[str]:
    """A fake LLM: one token at a time, with a checkpoint between (others may run)."""
    for token in items:
        await anyio.lowlevel.checkpoint()
        yield token


@pytest.mark.anyio
async def test_streamed_text_is_spoken_sentence_by_sentence_in_order(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(
            role="GuoXiaoyuan", codec="mp4", video={**SMALL_VIDEO, "subtitle_control": True}
        ) as s:
            speech = s.say_stream(tokens())
            got = await speech.collect()
            assert speech.sentences == ["今天天气真不错。", "我们去公园散步吧！", "好的"]
            kinds = [
                type(e).__name__ for e in got if isinstance(e, events.VoiceStart | events.VoiceEnd)
            ]
            assert kinds == ["VoiceStart", "VoiceEnd"] * 3  # one utterance after another
            subtitles = [e.text for e in got if isinstance(e, events.SubtitleOn)]
            assert "".join(subtitles) == "".join(speech.sentences)
            assert any(isinstance(e, events.AudioChunk) for e in got)
            assert isinstance(got[-1], events.VoiceEnd)
            video = await s.finish()  # the stream is still usable: a whole video of it all
            assert video.data


@pytest.mark.anyio
async def test_at_most_ahead_plus_one_sentences_are_under_way(emulator: Emulator) -> None:
    text = ["一。", "二。", "三。", "四。", "五"]
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO) as s:
            for ahead in (0, 1):
                speech = s.say_stream(tokens(text), ahead=ahead)
                ended = 0
                async for event in speech:
                    if isinstance(event, events.VoiceStart):
                        assert len(speech.sentences) - ended <= ahead + 1
                    if isinstance(event, events.VoiceEnd):
                        ended += 1
                        if ahead == 0:  # nothing is sent before the one before has ended
                            assert len(speech.sentences) == ended
                assert ended == 5 and speech.sentences == ["一。", "二。", "三。", "四。", "五"]


@pytest.mark.anyio
async def test_what_say_stream_refuses(emulator: Emulator) -> None:
    async with session_for(emulator) as av_session:
        async with av_session.tta.open(role="GuoXiaoyuan", codec="mp4", video=SMALL_VIDEO) as s:
            with pytest.raises(ValidationError, match=r"fragments.*async iterable"):
                s.say_stream("你好")  # type: ignore[arg-type]
            with pytest.raises(ValidationError, match="ahead"):
                s.say_stream(tokens(), ahead=-1)
            with pytest.raises(ValidationError, match="max_chars"):
                s.say_stream(tokens(), max_chars=1)
            speech = s.say_stream(tokens(["你好。", "<speak>今天</speak>", "。"]))
            with pytest.raises(ValidationError, match="SSML is whole-document only"):
                await speech.collect()
            assert speech.sentences == ["你好。"]

            async def not_text() -> AsyncIterator[str]:
                yield "你好"
                yield 42  # type: ignore[misc]

            with pytest.raises(ValidationError, match=r"fragment.*must be a str"):
                await s.say_stream(not_text()).collect()

            async def failing() -> AsyncIterator[str]:
                yield "你好。"
                raise RuntimeError("the LLM went away")

            with pytest.raises(RuntimeError, match="the LLM went away"):
                await s.say_stream(failing()).collect()
        async with av_session.tta.open(role="GuoXiaoyuan", input_mode="audio") as s:
            with pytest.raises(ValidationError, match="input_mode"):
                s.say_stream(tokens())
