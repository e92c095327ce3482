"""Masking never raises, whatever a hostile peer sends."""

from __future__ import annotations

from avatarkit import events
from avatarkit._redact import redact_url, short_repr


def test_a_url_that_does_not_parse_is_masked_not_raised() -> None:
    assert redact_url("http://[::1?token=s3cret") == "http://[::1?***"
    assert "s3cret" not in repr(events.VideoUrl("http://[?X-Amz-Signature=s3cret"))
    assert redact_url("http://[") == "http://["


def test_short_repr_of_values_that_cannot_be_printed() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert short_repr(deep) == "<list object>"
    assert short_repr(10**5000) == "<int object>"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert short_repr(Broken()) == "<Broken object>"
