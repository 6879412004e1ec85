"""The front servers' protocol (docs/exchange.md): §6.2 messages over HTTPS, each
signed, each answered with a signed §6.2 Response (results 1–8).

    POST /v1/messages                 a message to the receiver → its Response
    GET  /v1/messages?for=PARTY       the oldest message waiting for PARTY (204: none),
                                      with its delivery number in X-Etcnet-Delivery
    POST /v1/deliveries/N/response    PARTY's Response to delivery N → 200
    POST /v1/files?name=NAME          a file that is not a §6.2 message (a status-list
                                      version), numbered per sender → its answer

A file travels with X-Etcnet-File (its name), X-Etcnet-File-Id (the sender's
number for it) and X-Etcnet-Sender; it is answered, either way, by a signed JSON
answer with a §6.2 result (1, 2 for a signature that does not verify, 4 for a
file refused, 5 for one taken before).

Pure: no Django. Both the center (etcnet.exchange.link) and the simulated
national center (etcnet.exchange.national) build on it.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from etcnet.clearing import packages
from etcnet.clearing.packages import ResponseResult

__all__ = [
    "CONTENT_TYPE",
    "DELIVERY_HEADER",
    "FILE_HEADER",
    "FILE_ID_HEADER",
    "SENDER_HEADER",
    "SIGNATURE_HEADER",
    "FileAnswer",
    "Judged",
    "judge",
    "response",
]

SIGNATURE_HEADER = "X-Etcnet-Signature"
FILE_HEADER = "X-Etcnet-File"
FILE_ID_HEADER = "X-Etcnet-File-Id"
SENDER_HEADER = "X-Etcnet-Sender"
DELIVERY_HEADER = "X-Etcnet-Delivery"
CONTENT_TYPE = "application/xml; charset=utf-8"


class Judged(NamedTuple):
    """What a receiver makes of a message's bytes."""

    message: packages.Message | None  # None unless the whole message holds
    envelope: packages.Envelope | None  # None when not even the header reads
    result: ResponseResult  # RECEIVED, or why not (2, 3, 4, 7)
    reason: str


def _envelope(message: packages.Message) -> packages.Envelope:
    if isinstance(message, packages.Response):
        return packages.Envelope(message.header, 6, message.message_type, message.content_type)
    if isinstance(message, packages.TransactionPackage):
        return packages.Envelope(message.header, 5, 7, 1)
    if isinstance(message, packages.ClearingSummary):
        return packages.Envelope(message.header, 5, 5, 2)
    return packages.Envelope(message.header, 5, 5, 1)


def judge(data: bytes) -> Judged:
    """Reads ``data`` whole. A message with one malformed record is refused whole:
    result 4 (内容错误), 3 for a document that is not the schema's, 7 for an
    unknown version, 2 for a header that does not read."""
    try:
        message = packages.read(data)
    except packages.PackageError as error:
        try:
            envelope = packages.envelope(data)
        except packages.PackageError as header_error:
            return Judged(None, None, ResponseResult.HEADER_ERROR, str(header_error))
        if error.field == "Header/Version":
            result = ResponseResult.VERSION_ERROR
        elif error.field.startswith("Header"):
            result = ResponseResult.HEADER_ERROR
        elif error.field == "document" or error.field.endswith("unknown element"):
            result = ResponseResult.SCHEMA_FAILED
        else:
            result = ResponseResult.CONTENT_ERROR
        return Judged(None, envelope, result, str(error))
    return Judged(message, _envelope(message), ResponseResult.RECEIVED, "")


def response(
    envelope: packages.Envelope, *, responder: str, result: ResponseResult
) -> packages.Response:
    """The Response to the message of ``envelope``: its MessageId is the one answered."""
    header = packages.Header(
        sender_id=responder,
        receiver_id=envelope.header.sender_id,
        message_id=envelope.header.message_id,
    )
    message_type = envelope.message_type if envelope.message_type in (5, 7) else 7
    content_type = envelope.content_type if envelope.content_type in (1, 2) else 1
    if message_type == 7:
        content_type = 1
    return packages.Response(header, message_type, content_type, result)


class FileAnswer(NamedTuple):
    """The answer to a file: which file (sender's number), the §6.2 result, why."""

    file_id: int
    result: ResponseResult
    reason: str = ""

    def to_bytes(self) -> bytes:
        data = {"file_id": self.file_id, "result": int(self.result), "reason": self.reason}
        return json.dumps(data, sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> FileAnswer:
        try:
            found = json.loads(data)
            return cls(int(found["file_id"]), ResponseResult(int(found["result"])),
                       str(found.get("reason", "")))  # fmt: skip
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"answer: not a file answer ({error})") from None
