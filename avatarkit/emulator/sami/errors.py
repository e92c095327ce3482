"""The SAMI service's status codes and its one error type (doc 002).

Success is HTTP 200, ``status_code`` 20000000, ``status_text`` "OK" (doc 002
states no success code; 20000000 is the SAMI convention, HTTP 200 × 100000).
Errors have the response's shape without ``data``/``payload``.  Only
40000022 is documented (常见问题: HTTP 400, ``IllegalPayload:InvalidSpeaker``);
the other codes are the emulator's own, in the same ``Kind:Reason`` style, and
every text after it names the field, its value and the rule:

====== ======== ==============================================================
HTTP   code     status_text
====== ======== ==============================================================
400    40000001 ``IllegalRequest:InvalidBody`` body not a JSON object, a field
                of the wrong type, Content-Type not application/json
400    40000002 ``IllegalRequest:InvalidNamespace`` missing, not
                VoiceConversion, or body and query disagree
400    40000003 ``IllegalRequest:InvalidVersion`` query credentials without
                ``version=v4``
400    40000010 ``IllegalPayload:InvalidPayload`` payload missing, not a JSON
                object, or with an unknown field
400    40000020 ``IllegalPayload:InvalidParam`` a payload field's type or value
                (``audio_config.format``, ``enable_background``…)
400    40000022 ``IllegalPayload:InvalidSpeaker`` speaker missing or not in
                the documented table (exactly this text, as documented)
400    40000023 ``IllegalPayload:InvalidUrl`` url not http(s), not loopback
                (the emulator fetches nothing else), or the fetch failed
400    40000024 ``IllegalPayload:UnsupportedFormat`` no encoder for the format
400    40000030 ``IllegalData:InvalidBase64`` data not standard padded base64
400    40000031 ``IllegalData:EmptyAudio`` neither data nor payload.url
400    40000032 ``IllegalData:AudioTooLarge`` over 100 MB (使用备注 音频大小限制)
400    40000033 ``IllegalData:AudioTooLong`` over 10 minutes (音频时长限制)
400    40000034 ``IllegalData:UndecodableAudio`` not audio we can decode
401    40100001 ``Unauthorized:InvalidAppkey`` appkey missing or wrong
401    40100002 ``Unauthorized:InvalidToken`` token missing or wrong
404    40400000 ``NotFound`` (unused: the service has one path)
405    40500000 ``MethodNotAllowed`` anything but POST
500    50000000 ``InternalError`` an emulator bug (logged)
503    50300000 ``ServiceUnavailable`` injected failure
====== ======== ==============================================================
"""

from __future__ import annotations

from typing import Final

from avatarkit.emulator._service import Codes, ServiceError

__all__ = ["CODES", "SamiError"]

SUCCESS_CODE: Final = 20_000_000
INVALID_BODY: Final = 40_000_001
INVALID_NAMESPACE: Final = 40_000_002
INVALID_VERSION: Final = 40_000_003
INVALID_PAYLOAD: Final = 40_000_010
INVALID_PARAM: Final = 40_000_020
INVALID_SPEAKER: Final = 40_000_022
INVALID_URL: Final = 40_000_023
UNSUPPORTED_FORMAT: Final = 40_000_024
INVALID_BASE64: Final = 40_000_030
EMPTY_AUDIO: Final = 40_000_031
TOO_LARGE: Final = 40_000_032
TOO_LONG: Final = 40_000_033
UNDECODABLE: Final = 40_000_034
INVALID_APPKEY: Final = 40_100_001
INVALID_TOKEN: Final = 40_100_002
NOT_FOUND: Final = 40_400_000
METHOD: Final = 40_500_000
INTERNAL: Final = 50_000_000
UNAVAILABLE: Final = 50_300_000

CODES: Final = Codes(
    invalid=INVALID_BODY,
    no_such_api=NOT_FOUND,
    method=METHOD,
    internal=INTERNAL,
    unavailable=UNAVAILABLE,
)


class SamiError(ServiceError):
    """A SAMI answer other than success (``code`` is the status_code, ``message`` the
    status_text)."""
