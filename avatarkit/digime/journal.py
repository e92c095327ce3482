"""The resume journal: what lets an interrupted upload continue in a new process.

After each part the service acknowledged, a small JSON file is replaced
atomically (temp file, fsync, rename): the source's fingerprint, the
upload_id, the part layout and how many parts are done.  It is keyed by the
target (service, appid, conf_name, type, source path), so calling upload
again with the same file and target continues where the last run stopped.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import msgspec

from avatarkit._redact import protected_logger
from avatarkit._schema_errors import JSON_DECODE_ERRORS

__all__ = ["Journal", "JournalEntry", "default_journal_dir"]

log = protected_logger(__name__)


class JournalEntry(msgspec.Struct, kw_only=True):
    version: int = 1
    upload_id: str
    fingerprint: str
    size: int
    part_size: int
    min_part: int
    parts_done: int


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(JournalEntry)


def default_journal_dir(
    *,
    platform: str = sys.platform,
    env: Mapping[str, str] = os.environ,
    home: Path | None = None,
) -> Path:
    """Where interrupted uploads are remembered: ``$AVATARKIT_STATE_DIR``, else the
    platform's place for an application's state (platformdirs' ``user_state_dir``
    rules), plus ``avatarkit/uploads``:

    * Linux and other Unixes: ``$XDG_STATE_HOME``, else ``~/.local/state``;
    * macOS: ``~/Library/Application Support``;
    * Windows: ``%LOCALAPPDATA%``, else ``~\\AppData\\Local``.
    """
    explicit = env.get("AVATARKIT_STATE_DIR")
    if explicit:
        return Path(explicit)
    home = home if home is not None else Path.home()
    if platform == "darwin":
        base = home / "Library" / "Application Support"
    elif platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    else:
        base = Path(env.get("XDG_STATE_HOME") or home / ".local" / "state")
    return base / "avatarkit" / "uploads"


class Journal:
    """One upload's journal file."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory = directory
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        self.path = directory / f"{name}.json"

    def load(self) -> JournalEntry | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read upload journal %s (%s); starting over", self.path, exc)
            return None
        try:
            return _decoder.decode(data)
        except JSON_DECODE_ERRORS:
            log.warning("upload journal %s is corrupt; starting over", self.path)
            return None

    def save(self, entry: JournalEntry) -> None:
        """Atomically replace the journal (a crash leaves the old or the new one)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".journal-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_encoder.encode(entry))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
