"""Batch production: many videos from a ``.jsonl`` of jobs, resumable after a crash.

::

    from avatarkit.batch import load_jobs, run_batch

    async with AvatarSession.from_env() as av:
        summary = await run_batch(av, load_jobs("jobs.jsonl"), "out/", cap=8)

Or ``avatarkit batch jobs.jsonl -o out/``.  Jobs (:mod:`avatarkit.batch.jobs`),
the adaptive concurrency (:mod:`avatarkit.batch.limiter`), the manifest
(:mod:`avatarkit.batch.manifest`) and the runner (:mod:`avatarkit.batch.runner`).
"""

from avatarkit.batch.jobs import BatchJob, load_jobs, parse_jobs
from avatarkit.batch.limiter import AdaptiveLimit, Permits
from avatarkit.batch.manifest import Manifest, ManifestEntry
from avatarkit.batch.runner import BatchProgress, BatchSummary, PermitSource, run_batch

__all__ = [
    "AdaptiveLimit",
    "BatchJob",
    "BatchProgress",
    "BatchSummary",
    "Manifest",
    "ManifestEntry",
    "PermitSource",
    "Permits",
    "load_jobs",
    "parse_jobs",
    "run_batch",
]
