"""``AVATARKIT_LOG=debug|info``: the SDK's log records on stderr, without code.

Read once, at import (openai-python's ``OPENAI_LOG`` works the same way); it
adds one handler to the ``avatarkit`` logger and touches no other logger.
The records are scrubbed where they are logged (``_redact``), so the handler
prints no secret.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Final

__all__ = ["ENV_VAR", "setup_from_env"]

ENV_VAR: Final = "AVATARKIT_LOG"
_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO}
_FORMAT: Final = "[%(asctime)s %(name)s %(levelname)s] %(message)s"


class _EnvHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler AVATARKIT_LOG adds (recognised, so that it is added once)."""


def setup_from_env() -> None:
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return
    level = _LEVELS.get(value)
    if level is None:  # a typo must not break the import; say so once, on stderr
        print(
            f"avatarkit: {ENV_VAR}={value!r} is not one of {', '.join(_LEVELS)}: ignored",
            file=sys.stderr,
        )
        return
    logger = logging.getLogger("avatarkit")
    if not any(isinstance(h, _EnvHandler) for h in logger.handlers):
        handler = _EnvHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
    logger.setLevel(level)
