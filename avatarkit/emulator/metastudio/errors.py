"""The MetaStudio emulator's error codes and envelope (doc 003, 400/500 tables).

Doc 003 publishes two codes, ``MSS.00000003`` ("Invalid parameter", HTTP 400)
and ``MSS.00000004`` ("Internal Error", HTTP 500), and the envelope
``{"error_code", "error_msg"}`` (tables 7 and 8).  The other codes are the
emulator's own, in the same family, one per kind of refusal:

======  ==============  ===================================================
HTTP    error_code      meaning
======  ==============  ===================================================
400     MSS.00000003    invalid parameter: body not JSON or wrong-typed
                        field, a create/update-body rule, bad query
                        parameter, unknown command, Content-Type,
                        X-App-UserId; on a presigned PUT: wrong
                        Content-Type, Content-Length not the body's length
401     MSS.00000001    no credentials, wrong token, bad AK/SK signature
                        (wrong AK, altered request, stale X-Sdk-Date), no
                        X-Project-Id with AK/SK
403     MSS.00000002    project_id not this account's, or X-Project-Id
                        differs from the path's
403     MSS.00000008    presigned URL refused: unknown or altered
                        signature, already used, expired
404     MSS.00000005    no such job (or no such API under the prefix)
405     MSS.00000007    method not allowed on the path
409     MSS.00000006    the job's state does not allow the operation
411     MSS.00000009    presigned PUT without Content-Length
413     MSS.00000003    request body too large
500     MSS.00000004    internal error
503     MSS.00000010    injected failure on a presigned PUT (shaping)
======  ==============  ===================================================
"""

from __future__ import annotations

from typing import Final

import msgspec

from avatarkit.emulator._service import Codes, ServiceError

__all__ = [
    "CODES",
    "CONFLICT",
    "FORBIDDEN",
    "INTERNAL",
    "INVALID",
    "LENGTH_REQUIRED",
    "METHOD",
    "NOT_FOUND",
    "UNAUTHORIZED",
    "UNAVAILABLE",
    "URL_REFUSED",
    "ErrorBody",
    "MetaStudioError",
    "conflict",
    "invalid",
]

UNAUTHORIZED: Final = "MSS.00000001"
FORBIDDEN: Final = "MSS.00000002"
INVALID: Final = "MSS.00000003"  # doc 003, table 7
INTERNAL: Final = "MSS.00000004"  # doc 003, table 8
NOT_FOUND: Final = "MSS.00000005"
CONFLICT: Final = "MSS.00000006"
METHOD: Final = "MSS.00000007"
URL_REFUSED: Final = "MSS.00000008"
LENGTH_REQUIRED: Final = "MSS.00000009"
UNAVAILABLE: Final = "MSS.00000010"

CODES: Final = Codes(
    invalid=INVALID,
    no_such_api=NOT_FOUND,
    method=METHOD,
    internal=INTERNAL,
    unavailable=UNAVAILABLE,
)

#: Every refusal: HTTP status, one of the codes above, a message naming field, value, rule.
MetaStudioError = ServiceError


class ErrorBody(msgspec.Struct, kw_only=True):
    """Doc 003 tables 7/8 (and the official ``ErrorResponse`` model)."""

    error_code: str
    error_msg: str


def invalid(message: str) -> ServiceError:
    return ServiceError(400, INVALID, f"invalid parameter: {message}")


def conflict(job_id: str, state: str, what: str) -> ServiceError:
    return ServiceError(409, CONFLICT, f"job {job_id} is {state}: {what}")
