"""Running a batch of jobs on one session: adaptive concurrency, atomic outputs, a
manifest, and resumption after a crash.

* Each job's video and ``.srt`` are written under temp names and renamed into
  place, the ``.srt`` first and the video last (the video's rename is the commit);
  then its manifest line is appended.
* A rerun skips what the manifest records as done.  A job whose files are in
  place but has no manifest line (the run was killed between the rename and the
  line) is recorded as done without being produced again.  Temp files left by a
  killed run are removed at the start.
* A "busy" open (MSG 1002, the account's quota) halves the concurrency
  (:mod:`avatarkit.batch.limiter`) and the job waits its turn again; it does not
  count as a failed attempt.  Other transient failures are retried up to
  ``attempts`` with the session's backoff; a job that still fails is recorded
  with its reason, and the batch goes on.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
import msgspec

from avatarkit._redact import scrub
from avatarkit._retry import RetryPolicy
from avatarkit.batch.jobs import BatchJob
from avatarkit.batch.limiter import AdaptiveLimit, Permits
from avatarkit.batch.manifest import Manifest, ManifestEntry
from avatarkit.errors import AvatarError, ServiceError, ValidationError

if TYPE_CHECKING:
    from avatarkit._session import AvatarSession

__all__ = [
    "BatchProgress",
    "BatchSummary",
    "JobRunner",
    "PermitSource",
    "Tally",
    "plan",
    "run_batch",
]

_BUSY = 1002  # doc 001 §2.2.1.1: 服务繁忙
_ONE_TRY = RetryPolicy(attempts=1)  # the batch sees busy answers itself
#: Busy answers one job takes before it is recorded as failed (a bound, not a policy:
#: each lowers the concurrency, so under a real quota they stop long before).
MAX_BUSY = 200


class PermitSource(Protocol):
    """Where a batch takes its places from: :class:`~avatarkit.batch.limiter.Permits` in
    one process, or a shared actor (the Ray engine) across a cluster."""

    async def acquire(self) -> int:
        """Wait for a place; the limit's epoch when it was taken.

        Raises nothing of its own.

        Cancellation:
            No place is taken.
        """
        ...

    async def release(self, epoch: int, outcome: str) -> None:
        """Give a place back; ``outcome`` is ``"success"``, ``"busy"`` or another word.

        Raises nothing of its own.

        Cancellation:
            The place is given back all the same (implementations shield it).
        """
        ...


class BatchProgress(msgspec.Struct, frozen=True, kw_only=True):
    """Where a batch is, reported after each job ends.

    Attributes:
        total: Jobs in the batch.
        done: Jobs produced by this run.
        failed: Jobs that failed for good in this run.
        skipped: Jobs already done by an earlier run (or recovered).
        retried: Retries after a transient failure.
        busy: Opens refused as busy (each lowered the concurrency once at most).
        running: Jobs running now.
        limit: The concurrency now (adapted to the quota).
        elapsed_s: Seconds since the run started.
        eta_s: Seconds left at the rate so far (None until a job is done).
    """

    total: int
    done: int
    failed: int
    skipped: int
    retried: int
    busy: int
    running: int
    limit: int
    elapsed_s: float
    eta_s: float | None


class BatchSummary(msgspec.Struct, kw_only=True):
    """How a batch run ended.

    Attributes:
        total: Jobs in the batch.
        done: Jobs produced by this run.
        failed: Jobs that failed for good (their reasons in ``failures``).
        skipped: Jobs done by an earlier run.
        recovered: Jobs whose files an earlier, killed run had finished.
        retried: Retries after a transient failure.
        busy: Opens refused as busy.
        elapsed_s: Seconds the run took.
        jobs_per_s: Jobs produced per second.
        peak_concurrency: The most jobs that ran at once.
        cap: The concurrency cap.
        failures: Job id -> why it failed.
    """

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    recovered: int = 0
    retried: int = 0
    busy: int = 0
    elapsed_s: float = 0.0
    jobs_per_s: float = 0.0
    peak_concurrency: int = 0
    cap: int = 0
    failures: dict[str, str] = {}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def plan(
    folder: Path, jobs: Sequence[BatchJob], summary: BatchSummary
) -> tuple[Manifest, list[BatchJob]]:
    """The folder made and cleaned, its manifest read, and the jobs left to do (in a thread:
    it stats and hashes files)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError("output", str(folder), f"cannot be made: {exc.strerror}") from None
    _clean_partials(folder)
    manifest = Manifest(folder)
    entries = manifest.load()
    todo: list[BatchJob] = []
    for job in jobs:
        entry = entries.get(job.id)
        if entry is not None and entry.status == "done" and (folder / str(entry.output)).is_file():
            summary.skipped += 1
            continue
        video = folder / job.output_name
        srt_ok = not job.subtitles or (folder / job.srt_name).is_file()
        if video.is_file() and srt_ok:  # renamed into place, then the run was killed
            digest, size = _sha256(video)
            manifest.append(
                ManifestEntry(
                    id=job.id,
                    status="done",
                    output=job.output_name,
                    subtitles=job.srt_name if job.subtitles else None,
                    sha256=digest,
                    bytes=size,
                    finished_at=_now(),
                    recovered=True,
                )
            )
            summary.skipped += 1
            summary.recovered += 1
            continue
        todo.append(job)
    return manifest, todo


def _clean_partials(folder: Path) -> None:
    """Remove temp files a killed run left (``.{name}.partial``): nothing half-written stays."""
    for leftover in folder.glob(".*.partial"):
        leftover.unlink(missing_ok=True)


class JobRunner:
    """Makes one job's files, taking a place from ``permits`` for each try: a busy
    answer gives the place back (the limit halves) and waits its turn again; a
    transient failure is retried up to ``attempts``.  Returns the job's manifest
    entry, done or failed; never raises for the job's own failure.  The local
    engine runs one on its session; each Ray worker runs one on its own."""

    def __init__(
        self,
        session: AvatarSession,
        folder: Path,
        permits: PermitSource,
        *,
        attempts: int = 3,
    ) -> None:
        self.av = session.with_options(retry=_ONE_TRY)
        self.delays = session.retry
        self.folder = folder
        self.permits = permits
        self.attempts = attempts
        self.running = 0

    async def run(self, job: BatchJob) -> ManifestEntry:
        """The job, to its end: its entry (``status`` "done" or "failed").

        Raises nothing for the job's own failure.

        Cancellation:
            The try under way is abandoned (its temp files removed); its place is
            given back.
        """
        attempt, busy = 0, 0
        delays = iter(self.delays.delays())
        while True:
            epoch = await self.permits.acquire()
            self.running += 1
            outcome = "error"
            error: Exception | None = None
            try:
                entry = await self.produce(job)
                outcome = "success"
            except ServiceError as exc:
                outcome, error = ("busy" if exc.code == _BUSY else "error"), exc
            except Exception as exc:  # a bad job never stops the batch
                error = exc
            finally:
                self.running -= 1
                await self.permits.release(epoch, outcome)
            if outcome == "success":
                entry.attempts, entry.busy = attempt + 1, busy
                return entry
            if outcome == "busy":
                busy += 1
                if busy < MAX_BUSY:
                    await anyio.sleep(random.uniform(0.01, 0.05) * min(busy, 10))
                    continue
                delay = None
            else:
                attempt += 1
                transient = isinstance(error, AvatarError) and _transient(error)
                delay = next(delays, None) if transient and attempt < self.attempts else None
            if delay is None:
                return ManifestEntry(
                    id=job.id,
                    status="failed",
                    attempts=max(attempt, 1),
                    busy=busy,
                    reason=scrub(f"{type(error).__name__}: {error}"),
                    finished_at=_now(),
                )
            await anyio.sleep(delay)

    async def produce(self, job: BatchJob) -> ManifestEntry:
        from avatarkit.media import SubtitleTrack
        from avatarkit.tta.events import AudioChunk

        t0 = time.monotonic()
        async with self.av.tta.open(job.role, **job.open_fields()) as stream:
            t_open = time.monotonic()
            audio = 0
            async for event in stream.say(job.ssml if job.ssml is not None else str(job.text)):
                if isinstance(event, AudioChunk):
                    audio += len(event.pcm)
            t_speak = time.monotonic()
            video = await stream.finish()
            data = await video.read()
        t_finish = time.monotonic()
        srt = self.folder / job.srt_name if job.subtitles else None
        if srt is not None:  # first: the video's rename is the commit point
            track = SubtitleTrack(video.subtitles)
            await anyio.to_thread.run_sync(track.write, srt)
        target = self.folder / job.output_name
        digest = hashlib.sha256(data).hexdigest()
        await video.save(target)
        t_write = time.monotonic()
        return ManifestEntry(
            id=job.id,
            status="done",
            output=job.output_name,
            subtitles=srt.name if srt is not None else None,
            sha256=digest,
            bytes=len(data),
            duration_s=round(audio / 32_000, 3),
            timings={
                "open": round(t_open - t0, 4),
                "speak": round(t_speak - t_open, 4),
                "finish": round(t_finish - t_speak, 4),
                "write": round(t_write - t_finish, 4),
                "total": round(t_write - t0, 4),
            },
            finished_at=_now(),
        )


class Tally:
    """The driver's side: records each entry in the manifest and the summary, and
    reports progress."""

    def __init__(
        self,
        manifest: Manifest,
        summary: BatchSummary,
        on_progress: Callable[[BatchProgress], None] | None,
        *,
        limit: Callable[[], int],
        running: Callable[[], int],
    ) -> None:
        self.manifest = manifest
        self.summary = summary
        self.on_progress = on_progress
        self.limit = limit
        self.running = running
        self.started = time.monotonic()

    def record(self, entry: ManifestEntry) -> None:
        """Append ``entry`` to the manifest and count it.

        Raises:
            ValidationError: the manifest cannot be written.
        """
        self.manifest.append(entry)
        s = self.summary
        s.retried += max(entry.attempts - 1, 0)
        s.busy += entry.busy
        if entry.status == "done":
            s.done += 1
        else:
            s.failed += 1
            s.failures[entry.id] = entry.reason or "failed"
        self.progress()

    def progress(self) -> None:
        """Report where the batch is (a failing callback is ignored).  Raises nothing."""
        if self.on_progress is None:
            return
        s, elapsed = self.summary, time.monotonic() - self.started
        finished = s.done + s.failed
        left = s.total - finished - s.skipped
        eta = elapsed / finished * left if finished else None
        with contextlib.suppress(Exception):  # a broken display must not break the batch
            self.on_progress(
                BatchProgress(
                    total=s.total,
                    done=s.done,
                    failed=s.failed,
                    skipped=s.skipped,
                    retried=s.retried,
                    busy=s.busy,
                    running=self.running(),
                    limit=self.limit(),
                    elapsed_s=elapsed,
                    eta_s=eta,
                )
            )

    def finish(self, peak: int) -> BatchSummary:
        """The summary, with the run's duration and rate.  Raises nothing."""
        s = self.summary
        s.elapsed_s = round(time.monotonic() - self.started, 3)
        s.jobs_per_s = round(s.done / s.elapsed_s, 3) if s.elapsed_s else 0.0
        s.peak_concurrency = peak
        return s


def _transient(error: AvatarError) -> bool:
    from avatarkit._http import is_transient

    return is_transient(error)


async def run_batch(
    session: AvatarSession,
    jobs: Sequence[BatchJob],
    output: str | os.PathLike[str],
    *,
    cap: int = 8,
    start: int | None = None,
    attempts: int = 3,
    on_progress: Callable[[BatchProgress], None] | None = None,
    permits: PermitSource | None = None,
) -> BatchSummary:
    """Make every video of ``jobs`` into the folder ``output``, at most ``cap`` at once.

    The concurrency starts at ``start`` (default: ``cap``) and adapts to the
    account's quota (halved at a busy answer, grown by successes).  ``attempts``
    bounds the tries of a job that fails transiently (busy answers not counted).
    ``permits`` replaces the limiter (the Ray engine shares one across a cluster).
    ``on_progress`` is called after each job ends.

    Raises:
        ValidationError: ``output`` cannot be made or written, its manifest cannot
            be read, or ``cap``/``start``/``attempts`` breaks its rule.  A job's own
            failure is recorded, never raised.
        AvatarError: the session is not open.

    Cancellation:
        The jobs running are cancelled; what is finished is in the manifest, and
        their temp files are removed, so a rerun goes on from there.
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValidationError("attempts", attempts, "must be an integer >= 1")
    limit = AdaptiveLimit(cap, start=start)
    source: PermitSource = permits or Permits(limit)
    folder = Path(output)
    summary = BatchSummary(total=len(jobs), cap=cap)
    manifest, todo = await anyio.to_thread.run_sync(plan, folder, jobs, summary)
    runner = JobRunner(session, folder, source, attempts=attempts)
    tally = Tally(
        manifest,
        summary,
        on_progress,
        limit=lambda: limit.permits,
        running=lambda: runner.running,
    )
    tally.progress()

    async def one(job: BatchJob) -> None:
        tally.record(await runner.run(job))

    try:
        async with anyio.create_task_group() as tg:
            for job in todo:
                tg.start_soon(one, job)
    finally:
        tally.finish(source.peak if isinstance(source, Permits) else 0)
    return summary
