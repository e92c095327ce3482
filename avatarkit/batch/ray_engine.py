"""The same batch on a Ray cluster (``avatarkit[ray]``; ``--engine ray --address …``).

* One :class:`QuotaActor` owns the account's adaptive concurrency limit (the same
  AIMD rule as the local engine, :class:`~avatarkit.batch.limiter.AdaptiveLimit`).
  Every worker takes a permit from it before it opens a TTA session and gives it
  back after, so the appid never has more sessions open than the limit allows,
  however many nodes run workers.
* Workers are async Ray actors (:class:`BatchWorker`), each with its own
  :class:`~avatarkit.AvatarSession`; jobs are calls on them, handed out as workers
  free up.  A worker writes the job's files into ``output`` and returns the
  manifest entry; the driver alone appends to the manifest.
* ``output`` must be a folder every node sees at the same path: a shared file
  system (NFS, CephFS, Lustre), or object storage mounted as one (s3fs,
  Mountpoint for Amazon S3, gcsfuse, JuiceFS).  The video's rename is the job's
  commit point: on a mount whose rename is a copy then a delete, a crash
  mid-rename can leave a file that the next run's recovery reads as done, so on
  such mounts check the manifest's ``sha256`` when you consume the outputs.
  ``s3://``-style URLs are not written directly.

The session's credentials go to the workers as actor arguments (Ray's object
store), never in logs or reprs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec

from avatarkit._redact import register_secret
from avatarkit.batch.jobs import BatchJob
from avatarkit.batch.limiter import AdaptiveLimit, Permits
from avatarkit.batch.manifest import ManifestEntry
from avatarkit.batch.runner import BatchProgress, BatchSummary, JobRunner, Tally, plan
from avatarkit.errors import AvatarError, ValidationError

__all__ = ["BatchWorker", "QuotaActor", "RayPermits", "run_batch_ray"]


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise AvatarError("the Ray engine needs Ray: pip install 'avatarkit[ray]'") from exc
    return ray


class QuotaActor:
    """The cluster's one limiter (a Ray actor, async): the local engine's
    :class:`~avatarkit.batch.limiter.Permits`, served to every worker."""

    def __init__(self, cap: int, start: int | None = None) -> None:
        self.permits = Permits(AdaptiveLimit(cap, start=start))
        """The places, under the cluster's AIMD limit."""

    async def acquire(self) -> int:
        """Wait for a place; the epoch it was taken in.

        Raises nothing.

        Cancellation:
            No place is taken.
        """
        return await self.permits.acquire()

    async def release(self, epoch: int, outcome: str) -> None:
        """Give a place back (``outcome``: "success", "busy" or anything else).

        Raises nothing.

        Cancellation:
            Shielded: the place is always given back.
        """
        await self.permits.release(epoch, outcome)

    def stats(self) -> dict[str, float]:
        """``in_use``, ``peak``, ``permits`` and ``value`` of the limit now.  Raises nothing."""
        permits = self.permits
        return {
            "in_use": permits.in_use,
            "peak": permits.peak,
            "permits": permits.limit.permits,
            "value": permits.limit.value,
        }


class RayPermits:
    """A :class:`~avatarkit.batch.runner.PermitSource` backed by the quota actor."""

    def __init__(self, actor: Any) -> None:
        self._actor = actor

    async def acquire(self) -> int:
        """A permit from the actor (waits while the cluster is at its limit).

        Raises nothing of its own (Ray's errors pass).

        Cancellation:
            A permit granted as the call is cancelled is not returned; keep workers'
            calls uncancelled (the engine does).
        """
        epoch: int = await self._actor.acquire.remote()
        return epoch

    async def release(self, epoch: int, outcome: str) -> None:
        """Give the permit back.

        Raises nothing of its own.

        Cancellation:
            Shielded: the permit is always given back.
        """
        with anyio.CancelScope(shield=True):
            await self._actor.release.remote(epoch, outcome)


class BatchWorker:
    """A Ray actor (async) with its own session, making the jobs it is handed."""

    def __init__(
        self,
        session_args: dict[str, Any],
        output: str,
        quota: Any,
        attempts: int,
    ) -> None:
        register_secret(session_args.get("token"))
        self._session_args = session_args
        self._output = Path(output)
        self._quota = quota
        self._attempts = attempts
        self._session: Any = None
        self._runner: JobRunner | None = None

    async def _ready(self) -> JobRunner:
        if self._runner is None:
            from avatarkit._session import AvatarSession, Endpoints

            args = dict(self._session_args)
            endpoints = Endpoints(**args.pop("endpoints"))
            self._session = await AvatarSession(endpoints=endpoints, **args)
            self._runner = JobRunner(
                self._session, self._output, RayPermits(self._quota), attempts=self._attempts
            )
        return self._runner

    async def run(self, job_json: bytes) -> bytes:
        """Make one job (JSON of a BatchJob); its manifest entry, as JSON.

        Raises:
            AvatarError: the worker's session could not be opened.  The job's own
                failure is its entry (``status`` "failed"), not an exception.

        Cancellation:
            The try under way is abandoned (its temp files removed) and its permit
            given back.
        """
        job = msgspec.json.decode(job_json, type=BatchJob)
        entry = await (await self._ready()).run(job)
        return msgspec.json.encode(entry)

    async def close(self) -> None:
        """Close the worker's session.  Raises nothing of its own.

        Cancellation:
            Shielded (the session's close is).
        """
        if self._session is not None:
            await self._session.aclose()


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(path).absolute()


def _session_args(session_env: dict[str, str] | None) -> dict[str, Any]:
    """The workers' session, from ``session_env`` (default: this process's environment)."""
    from avatarkit._session import _ENV_URLS, ENV_APPID, ENV_TOKEN  # the session's names

    env = dict(os.environ if session_env is None else session_env)
    try:
        appid, token = env[ENV_APPID], env[ENV_TOKEN]
    except KeyError as exc:
        raise ValidationError(exc.args[0], None, "environment variable is not set") from None
    endpoints = {field: env[var] for field, var in _ENV_URLS.items() if env.get(var)}
    return {"appid": appid, "token": token, "endpoints": endpoints}


async def run_batch_ray(
    jobs: Sequence[BatchJob],
    output: str | os.PathLike[str],
    *,
    address: str | None = None,
    cap: int = 8,
    start: int | None = None,
    attempts: int = 3,
    workers: int | None = None,
    session_env: dict[str, str] | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> BatchSummary:
    """:func:`~avatarkit.batch.run_batch` on a Ray cluster (``address``; None: a local one).

    ``workers`` async actors (default: ``cap``) each open their own session from
    ``session_env`` (default: this process's ``AVATARKIT_*`` variables); one
    :class:`QuotaActor` holds the concurrency limit for all of them.  The driver
    plans (skips, recovers), appends to the manifest and reports progress.

    Raises:
        ValidationError: as :func:`~avatarkit.batch.run_batch`, or the credentials
            are not in ``session_env``.
        AvatarError: Ray is not installed (the ``ray`` extra).

    Cancellation:
        The calls under way are cancelled and the actors killed; what is finished is
        in the manifest.
    """
    ray = _ray()
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValidationError("attempts", attempts, "must be an integer >= 1")
    AdaptiveLimit(cap, start=start)  # checks cap and start here, not in the actor
    args = _session_args(session_env)
    folder = _absolute(output)  # the same path on every node
    summary = BatchSummary(total=len(jobs), cap=cap)
    manifest, todo = await anyio.to_thread.run_sync(plan, folder, jobs, summary)
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    quota = ray.remote(QuotaActor).options(num_cpus=0, max_concurrency=1000).remote(cap, start)
    count = max(1, min(workers or cap, len(todo) or 1))
    pool = [
        ray.remote(BatchWorker)
        .options(num_cpus=0, max_concurrency=4)
        .remote(args, str(folder), quota, attempts)
        for _ in range(count)
    ]
    state: dict[str, float] = {"permits": cap, "in_use": 0, "peak": 0}
    running = 0
    tally = Tally(
        manifest,
        summary,
        on_progress,
        limit=lambda: int(state["permits"]),
        running=lambda: running,
    )
    tally.progress()
    queue = list(reversed(todo))

    async def worker_loop(worker: Any) -> None:
        nonlocal running
        while queue:
            job = queue.pop()
            running += 1
            try:
                raw = await worker.run.remote(msgspec.json.encode(job))
            finally:
                running -= 1
            state.update(await quota.stats.remote())
            tally.record(msgspec.json.decode(raw, type=ManifestEntry))

    try:
        async with anyio.create_task_group() as tg:
            for worker in pool:
                for _ in range(4):  # each async actor makes up to 4 jobs at once
                    tg.start_soon(worker_loop, worker)
    finally:
        with anyio.CancelScope(shield=True):
            state.update(await quota.stats.remote())
            for worker in pool:
                await worker.close.remote()
                ray.kill(worker)
            ray.kill(quota)
        tally.finish(int(state["peak"]))
    return summary
