"""The emulator's TTA service (doc 001): one package, in the style of moto's services.

:mod:`.models` holds the open-config rules and catalogs as the emulator reads doc 001,
:mod:`.ssml` the chat SSML rules, :mod:`.audio` audio drive, :mod:`.api` the WebSocket
endpoint and session, :mod:`.errors` what it refuses.  Nothing here uses the SDK's
rules, catalogs or defaults; only the wire format (:mod:`avatarkit.tta.frames`).
"""

from avatarkit.emulator.tta.api import TtaSession, tta_endpoint

__all__ = ["TtaSession", "tta_endpoint"]
