"""The digime service's error codes and its one error type.

Doc 000 publishes no error codes (every example answers ``errno`` 0,
``errMsg`` "success"); these are the emulator's own.  Each errMsg names the
field, its value and the rule broken.

====== ===== ==============================================================
HTTP   errno meaning
====== ===== ==============================================================
401    40100 ``Authorization`` missing or not the raw token (no "Bearer")
400    40001 invalid parameter: missing or wrong-typed field, bad
             conf_name, type/suffix mismatch, appid not this account's,
             tts_type missing or unknown for type 11 or non-empty for a
             video, role_show_name missing for a video, bad callback_url,
             Content-Type not application/json, body not a JSON object
400    40002 upload_id unknown or already completed
400    40003 part_num out of order (the message says which is expected)
400    40004 part size rule broken: every part but the last must be at
             least ``digime_min_part_bytes`` (a short last part is merged
             into the one before it); a part must not be empty
400    40005 content is not valid standard base64 (RFC 4648, padded)
400    40006 complete without any part
400    40007 type, file_suffix or conf_name differ from the init
400    40008 a voice-clone archive (type 11) that is not what doc 000 asks
             for: not a readable zip/tar, or holding no audio file, or a
             file that is not audio (checked at complete)
404    40400 no such operation under the prefix
404    40401 conf_name unknown to ``/digime_training_info``, or no completed
             training video (type 1) for ``/init_train_digime``
405    40500 method other than POST
500    50000 an emulator bug (logged)
503    50300 injected failure (see :mod:`avatarkit.emulator.shaping`)
====== ===== ==============================================================
"""

from __future__ import annotations

from typing import Final

from avatarkit.emulator._service import Codes, ServiceError

__all__ = ["CODES", "DigimeError"]

UNAUTHORIZED: Final = 40100
INVALID: Final = 40001
UNKNOWN_UPLOAD: Final = 40002
OUT_OF_ORDER: Final = 40003
PART_SIZE: Final = 40004
BAD_BASE64: Final = 40005
NO_PARTS: Final = 40006
MISMATCH: Final = 40007
BAD_ARCHIVE: Final = 40008
NO_SUCH_API: Final = 40400
NOT_FOUND: Final = 40401
METHOD: Final = 40500
INTERNAL: Final = 50000
UNAVAILABLE: Final = 50300

CODES: Final = Codes(
    invalid=INVALID,
    no_such_api=NO_SUCH_API,
    method=METHOD,
    internal=INTERNAL,
    unavailable=UNAVAILABLE,
)


class DigimeError(ServiceError):
    """A digime answer other than success (``code`` is the errno)."""
