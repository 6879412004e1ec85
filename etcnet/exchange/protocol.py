"""The front servers' protocol (docs/exchange.md): §6.2 messages over HTTPS, each
signed, each answered with a signed §6.2 Response (results 1–8).

    POST /v1/messages                 a message to the receiver → its Response
    GET  /v1/messages?for=PARTY       the oldest message waiting for PARTY (204: none),
                                      with its delivery number in X-Etcnet-Delivery
    POST /v1/deliveries/N/response    PARTY's Response to delivery N → 200

Pure: no Django. Both the center (etcnet.exchange.link) and the simulated
national center (etcnet.exchange.national) build on it.
"""

from __future__ import annotations

from typing import NamedTuple

from etcnet.clearing import packages
from etcnet.clearing.packages import ResponseResult

__all__ = [
    "CONTENT_TYPE",
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "Judged",
    "judge",
    "response",
]

SIGNATURE_HEADER = "X-Etcnet-Signature"
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
