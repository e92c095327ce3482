"""The pure parts of uploads: the part planner, sources, the journal, the wire."""

from __future__ import annotations

import io
import itertools
import os
import tarfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avatarkit.digime import rules
from avatarkit.digime._wire import check_envelope, upload_id_from
from avatarkit.digime.journal import Journal, JournalEntry
from avatarkit.digime.plan import Part, plan_parts
from avatarkit.digime.source import FileSource, TarFolderSource, open_source
from avatarkit.errors import ProtocolError, ServiceError, ValidationError

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "lengths"),
    [
        (1, [1]),
        (5 * MIB - 1, [5 * MIB - 1]),
        (5 * MIB, [5 * MIB]),
        (10 * MIB - 1, [10 * MIB - 1]),
        (10 * MIB, [10 * MIB]),
        (10 * MIB + 1, [10 * MIB + 1]),  # a 1-byte tail is merged
        (15 * MIB - 1, [15 * MIB - 1]),  # tail of 5 MiB - 1: merged
        (15 * MIB, [10 * MIB, 5 * MIB]),  # tail of exactly 5 MiB stands alone
        (15 * MIB + 1, [10 * MIB, 5 * MIB + 1]),
        (30 * MIB + 7, [10 * MIB, 10 * MIB, 10 * MIB + 7]),
    ],
)
def test_plan_boundaries(size: int, lengths: list[int]) -> None:
    parts = plan_parts(size)
    assert [p.length for p in parts] == lengths
    assert [p.number for p in parts] == list(range(1, len(lengths) + 1))


@given(st.integers(1, 64), st.integers(1, 64), st.data())
def test_plan_properties(part: int, minimum: int, data: st.DataObject) -> None:
    part_size, min_part = max(part, minimum) * 1000, minimum * 1000
    size = data.draw(st.integers(1, 300 * part_size))
    parts = plan_parts(size, part_size, min_part)
    assert parts[0] == Part(1, 0, parts[0].length)
    for before, after in itertools.pairwise(parts):
        assert after.offset == before.offset + before.length  # contiguous
        assert after.number == before.number + 1
    assert parts[-1].offset + parts[-1].length == size  # covers the file exactly
    if len(parts) > 1:
        assert all(p.length >= min_part for p in parts)
        assert all(p.length == part_size for p in parts[:-1])
        assert parts[-1].length < part_size + min_part


@pytest.mark.parametrize(
    ("size", "part", "minimum", "field"),
    [(0, 10, 5, "file"), (-1, 10, 5, "file"), (9, 4, 5, "part_size")],
)
def test_plan_refuses(size: int, part: int, minimum: int, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        plan_parts(size, part, minimum)
    assert info.value.field == field


@pytest.mark.parametrize("value", ["Liu-Xuan", "a", "A1-b2"])
def test_conf_name_accepted(value: str) -> None:
    assert rules.check_conf_name(value) == value


@pytest.mark.parametrize("value", ["", "Liu Xuan", "刘璇", "a_b", "a/b", None, 3])
def test_conf_name_refused(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        rules.check_conf_name(value)
    assert info.value.field == "conf_name" and "A-Za-z0-9-" in info.value.rule


def test_types_and_suffixes() -> None:
    assert rules.check_type("training") is rules.MaterialType.TRAINING
    assert rules.check_type(11) is rules.MaterialType.AUDIO
    for bad in (0, 4, "video", True, 1.0):
        with pytest.raises(ValidationError):
            rules.check_type(bad)
    assert rules.check_suffix(rules.MaterialType.TRAINING, "MP4") == "mp4"
    with pytest.raises(ValidationError, match="mp4 or mov"):
        rules.check_suffix(rules.MaterialType.TEMPLATE, "zip")
    with pytest.raises(ValidationError, match="zip or tar"):
        rules.check_suffix(rules.MaterialType.AUDIO, "mp4")
    with pytest.raises(ValidationError, match="tts_model_v1"):
        rules.check_tts_type("tts_model_v3")


# -- sources --------------------------------------------------------------


def test_file_source_reads_ranges_and_fingerprints(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    data = os.urandom(100_000)
    path.write_bytes(data)
    source = FileSource(path)
    try:
        assert source.size == len(data) and source.suffix == "mp4"
        assert source.read(10, 50_000) == data[10:50_010]
        before = source.fingerprint()
        assert before == source.fingerprint()
    finally:
        source.close()
    path.write_bytes(data[:50_000] + b"x" + data[50_001:])  # one byte changed
    changed = FileSource(path)
    try:
        assert changed.fingerprint() != before
    finally:
        changed.close()


def test_file_source_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        open_source(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ValidationError, match="empty"):
        open_source(tmp_path / "empty.mp4")
    unreadable = tmp_path / "secret.mp4"
    unreadable.write_bytes(b"x")
    unreadable.chmod(0)
    if not os.access(unreadable, os.R_OK):  # root can read anything
        with pytest.raises(ValidationError, match="readable"):
            open_source(unreadable)


def test_folder_becomes_a_valid_tar(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(os.urandom(1000))
    (tmp_path / "sub").mkdir()
    long_name = "x" * 150 + ".mp3"  # needs a PAX header
    (tmp_path / "sub" / long_name).write_bytes(os.urandom(70_000))
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / ".hidden.wav").write_bytes(b"hidden")
    source = open_source(tmp_path)
    assert isinstance(source, TarFolderSource) and source.suffix == "tar"
    assert source.members == ["a.wav", f"sub/{long_name}"]
    archive = source.read(0, source.size)
    assert len(archive) == source.size and source.size % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for name in source.members:
            member = tar.extractfile(name)
            assert member is not None
            assert member.read() == (tmp_path / name).read_bytes()


@given(st.data())
def test_tar_ranges_agree_with_the_whole(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("audio")
    for i, size in enumerate(data.draw(st.lists(st.integers(0, 3000), min_size=1, max_size=4))):
        (folder / f"{i}.wav").write_bytes(bytes([i]) * size)
    source = TarFolderSource(folder)
    whole = source.read(0, source.size)
    offset = data.draw(st.integers(0, source.size - 1))
    length = data.draw(st.integers(1, source.size - offset))
    assert source.read(offset, length) == whole[offset : offset + length]


def test_folder_without_audio(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValidationError, match="no audio files"):
        open_source(tmp_path)


# -- journal --------------------------------------------------------------


def test_journal_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", "target-key")
    assert journal.load() is None
    entry = JournalEntry(
        upload_id="u1", fingerprint="f", size=10, part_size=5, min_part=5, parts_done=1
    )
    journal.save(entry)
    journal.save(msgspec.structs.replace(entry, parts_done=2))
    assert journal.load() == msgspec.structs.replace(entry, parts_done=2)
    assert [p.name for p in (tmp_path / "j").iterdir()] == [journal.path.name]  # no temp left
    assert Journal(tmp_path / "j", "other-key").path != journal.path
    journal.path.write_text("{not json")
    assert journal.load() is None  # corrupt: start over
    journal.remove()
    journal.remove()
    assert not journal.path.exists()


# -- wire -----------------------------------------------------------------


def test_both_upload_id_envelopes() -> None:
    assert upload_id_from(msgspec.Raw(b'{"upload_id":"48501f02"}')) == "48501f02"
    assert upload_id_from(msgspec.Raw(b'"48501f02"')) == "48501f02"
    for bad in (b"null", b'{"id":"x"}', b'""', b"42"):
        with pytest.raises(ProtocolError):
            upload_id_from(msgspec.Raw(bad))


def test_envelope_errors() -> None:
    ok = check_envelope(b'{"errno":0,"errMsg":"success","data":"x"}', status=200, what="t")
    assert bytes(ok.data) == b'"x"'
    with pytest.raises(ServiceError) as info:
        check_envelope(b'{"errno":40001,"errMsg":"conf_name bad"}', status=400, what="t")
    assert (info.value.code, info.value.status, info.value.retryable) == (40001, 400, False)
    with pytest.raises(ServiceError) as info:
        check_envelope(b'{"errno":0,"errMsg":"not quite"}', status=200, what="t")
    assert info.value.code == 0
    with pytest.raises(ServiceError) as info:
        check_envelope(b"<html>bad gateway</html>", status=502, what="t")
    assert info.value.retryable
    with pytest.raises(ProtocolError):
        check_envelope(b"<html>", status=200, what="t")


def test_the_journal_lives_where_each_platform_keeps_state() -> None:
    from avatarkit.digime.journal import default_journal_dir

    home = Path("/home/u")
    cases = [
        ("linux", {}, home / ".local/state/avatarkit/uploads"),
        ("linux", {"XDG_STATE_HOME": "/xdg"}, Path("/xdg/avatarkit/uploads")),
        (
            "darwin",
            {"XDG_STATE_HOME": "/xdg"},
            home / "Library/Application Support/avatarkit/uploads",
        ),
        ("win32", {"LOCALAPPDATA": "/lad"}, Path("/lad/avatarkit/uploads")),
        ("win32", {}, home / "AppData/Local/avatarkit/uploads"),
        ("darwin", {"AVATARKIT_STATE_DIR": "/mine"}, Path("/mine")),
    ]
    for platform, env, expected in cases:
        assert default_journal_dir(platform=platform, env=env, home=home) == expected, platform
