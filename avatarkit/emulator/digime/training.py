"""A digime training's life: the timer, the review, the callback (doc 000 §4, §5).

The state goes 1 → 2 after ``digime_training_seconds``, or → 3 when the
training video fails review (:mod:`.review`) or the conf_name is in
``digime_fail_conf_names``; then the result is POSTed to ``callback_url``
(3 attempts; failures are logged, never fatal).  The work runs in the app
lifespan's task group, so shutting the emulator down cancels it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio
import httpx
import msgspec

from avatarkit._redact import protected_logger, redact_url
from avatarkit.emulator.digime.models import TrainingRecord, TrainingState
from avatarkit.emulator.digime.review import review_training_video

if TYPE_CHECKING:
    from avatarkit.emulator.state import EmulatorState

__all__ = ["train"]

log = protected_logger(__name__)

CALLBACK_ATTEMPTS: Final = 3
CALLBACK_TIMEOUT: Final = 5.0
CALLBACK_BACKOFF: Final = 0.1  # seconds, times the attempt number


def _fail_names(state: EmulatorState) -> tuple[str, ...]:
    names = state.options.digime_fail_conf_names
    return (names,) if isinstance(names, str) else tuple(names)  # a lone name, not its letters


async def train(state: EmulatorState, record: TrainingRecord, pics_base: str) -> None:
    """Run one training to its end (started in the digime store's task group)."""
    with record.scope:
        await anyio.sleep(state.options.digime_training_seconds)
        reason = None
        if record.video is not None:
            reason = await anyio.to_thread.run_sync(review_training_video, record.video)
        if reason is None and record.conf_name in _fail_names(state):
            reason = "the training failed on purpose (the emulator's digime_fail_conf_names)"
        if reason is not None:
            record.state = TrainingState.FAILED
            record.fail_reason = reason
            log.info("digime training of %s failed: %s", record.conf_name, reason)
        else:
            record.role_pic = f"{pics_base}/{record.conf_name}/role.png"
            record.pre_pic = f"{pics_base}/{record.conf_name}/pre.png"
            record.state = TrainingState.SUCCESS
        try:
            await _deliver(state, record)
        except Exception as exc:  # background work must never take the app down
            log.warning(
                "digime callback to %s failed: %s", redact_url(record.callback_url), repr(exc)
            )
        finally:
            record.finished.set()


async def _deliver(state: EmulatorState, record: TrainingRecord) -> None:
    url = record.callback_url
    payload = msgspec.json.encode(record.info())
    headers = {"Content-Type": "application/json"}
    # trust_env=False: an emulator calls back where it is told, not via proxies.
    async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT, trust_env=False) as client:
        for attempt in range(1, CALLBACK_ATTEMPTS + 1):
            try:
                response = await client.post(url, content=payload, headers=headers)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__  # its text may hold the unredacted URL
            else:
                if response.is_success:
                    state.stats.digime_callbacks_sent += 1
                    return
                problem = f"HTTP {response.status_code}"
            log.warning(
                "digime callback to %s failed (attempt %d of %d): %s",
                redact_url(url),
                attempt,
                CALLBACK_ATTEMPTS,
                problem,
            )
            if attempt < CALLBACK_ATTEMPTS:
                await anyio.sleep(CALLBACK_BACKOFF * attempt)
