"""Reading a version file again after ``read_version`` has accepted it: its
lines in blocks, the bytes hashed again; and why a file was refused."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from etcnet.lists.keys import ListKeyError
from etcnet.lists.versionfile import ENTRIES, MANIFEST, VersionFileError
from etcnet.terminal.statuslist._base import RefusalCode

_CHUNK = 1 << 22
#: What reading a damaged zip can raise besides VersionFileError (a bad CRC, a
#: broken deflate stream, bytes that are not UTF-8, an encrypted member).
_BROKEN = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    RuntimeError,
    NotImplementedError,
)
#: What reading entries again can raise when the file is not what was verified.
_UNREADABLE = (
    VersionFileError,
    ListKeyError,
    KeyError,
    TypeError,
    ValueError,
    OSError,
    zipfile.BadZipFile,
)


def _entries(source: bytes | Path, sha256: str) -> Iterator[list[dict[str, Any]]]:
    """The lines of a file ``read_version`` has accepted, in blocks of many lines
    read by one ``json.loads`` each — its own second reading (``VersionFile.lines``)
    checks each line again at ~7 µs a line. The bytes are hashed again and must
    still match the manifest (a path may have changed since it was verified)."""
    digest = hashlib.sha256()
    archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    with archive, archive.open(ENTRIES) as stream:
        first = stream.readline()
        digest.update(first)
        if first.strip() != b"[":  # not one object a line: read whole, as read_version does
            rest = stream.read()
            digest.update(rest)
            whole = json.loads(first + rest)
            yield whole if isinstance(whole, list) else []
        else:
            pending = b""
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                chunk = pending + chunk
                cut = chunk.rfind(b"\n") + 1
                yield _decode_lines(chunk[:cut])
                pending = chunk[cut:]
            yield _decode_lines(pending)
    if digest.hexdigest() != sha256:
        raise VersionFileError("sha256", "the entries changed since they were verified")


def _decode_lines(block: bytes) -> list[dict[str, Any]]:
    """Whole lines of one object each, commas between them (etcnet's layout: one
    ``json.loads``), or any commas ``read_version`` accepts (line by line)."""
    body = block.strip().removesuffix(b"]").strip().removeprefix(b"[").strip().strip(b",")
    if not body:
        return []
    try:
        decoded: list[dict[str, Any]] = json.loads(b"[" + body + b"]")
    except ValueError:  # a line without its comma, or with one on both sides
        parts = (line.strip().removeprefix(b",").removesuffix(b",") for line in body.split(b"\n"))
        decoded = json.loads(b"[" + b",".join(p for p in parts if p) + b"]")
    return decoded


def _refusal_code(
    error: VersionFileError, source: str | Path | bytes, trusted: Mapping[str, Ed25519PublicKey]
) -> RefusalCode:
    """The refusal code of a file ``read_version`` refused; the signature cases are
    told apart from the manifest itself, not from the error's wording."""
    if error.field not in ("signature", "manifest.signature"):
        return "corrupt"
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as zf:
            signature = json.loads(zf.read(MANIFEST)).get("signature")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, AttributeError):
        return "corrupt"
    if signature is None:
        return "unsigned"
    if isinstance(signature, dict) and str(signature.get("key_id", "")) not in trusted:
        return "untrusted_key"
    return "bad_signature"
