"""Status-list version files (``etcnet-status-list/1``, docs/lists.md): a zip
holding ``manifest.json`` and ``entries.json``, checksummed and signed.

The center publishes its versions in this format and imports national or
other-issuer lists in the same format; terminals download it. Reading checks
everything before anything is applied: the zip, the manifest's schema, the
SHA-256 of the entries, the Ed25519 signature, every line's schema, the count.

Pure: no Django.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import itertools
import json
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from etcnet.lists.keys import TYPES, IssuerTable, ListKeyError

__all__ = [
    "FORMAT",
    "Line",
    "Manifest",
    "VersionFile",
    "VersionFileError",
    "key_id",
    "public_key_from_text",
    "public_key_text",
    "read_version",
    "write_version",
]

FORMAT = "etcnet-status-list/1"
MANIFEST = "manifest.json"
ENTRIES = "entries.json"
IN, OUT = 1, 2
_VERSION = re.compile(r"^[0-9]{12}$")
Kind = Literal["full", "increment"]


class VersionFileError(ValueError):
    """A version file that cannot be accepted; ``field`` names what is wrong
    (``zip``, ``manifest.<name>``, ``sha256``, ``signature``, ``entries[<n>].<name>``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Line:
    """One entry: a card or OBU entering (status 1) or leaving (2) the list for a type."""

    medium: str
    id: str
    type: int
    status: int = IN
    issuer: str = ""
    since: str = ""  # when it entered the list at the publishing center (UTC, ISO 8601)
    reason: str = ""

    def as_json(self) -> str:
        return _compact(
            {
                "id": self.id,
                "issuer": self.issuer,
                "medium": self.medium,
                "reason": self.reason,
                "since": self.since,
                "status": self.status,
                "type": self.type,
            }
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    kind: Kind
    #: yyyyMMddHHmm, Asia/Shanghai, of the increment (a full version carries the
    #: number of the increment whose state it is).
    version: str
    previous: str | None
    publisher: str
    created_at: str
    issuers: tuple[str, ...]
    count: int = 0  # lines in entries.json
    list_size: int = 0  # (medium, id, type) entries on the list after this version
    sha256: str = ""
    signature: dict[str, str] | None = field(default=None)
    format: str = FORMAT

    def signed_bytes(self) -> bytes:
        """What the signature covers: the manifest without its signature, canonical JSON."""
        body = asdict(self)
        body.pop("signature")
        body["issuers"] = list(self.issuers)
        return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["issuers"] = list(self.issuers)
        return body


@dataclass(frozen=True)
class VersionFile:
    """A version file that passed every check; ``lines()`` streams its entries again."""

    manifest: Manifest
    lines: Callable[[], Iterator[Line]]

    @property
    def issuers(self) -> IssuerTable:
        return IssuerTable(self.manifest.issuers)


_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# -- keys -------------------------------------------------------------------------


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64 — how the center hands it to terminals."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as error:
        raise VersionFileError("public_key", f"not a base64 Ed25519 public key ({error})") from None


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# -- writing ----------------------------------------------------------------------


def write_version(
    target: str | Path | IO[bytes],
    manifest: Manifest,
    lines: Iterable[Line],
    *,
    signer: Ed25519PrivateKey | None,
) -> Manifest:
    """Writes the zip; ``count``, ``sha256`` and ``signature`` of ``manifest`` are
    filled in here. Returns the manifest as written. One entry per line inside a
    JSON array, so the file is plain JSON and readable line by line."""
    _check_manifest_fields(manifest)
    digest = hashlib.sha256()
    count = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(ENTRIES, "w", force_zip64=True) as out:

            def put(chunk: bytes) -> None:
                digest.update(chunk)
                out.write(chunk)

            put(b"[")
            for line in lines:
                put((b"\n" if count == 0 else b",\n") + line.as_json().encode())
                count += 1
            put(b"\n]\n")
        done = replace(manifest, count=count, sha256=digest.hexdigest(), signature=None)
        if signer is not None:
            public = signer.public_key()
            done = replace(
                done,
                signature={
                    "alg": "ed25519",
                    "key_id": key_id(public),
                    "value": base64.b64encode(signer.sign(done.signed_bytes())).decode(),
                },
            )
        archive.writestr(
            MANIFEST, json.dumps(done.as_json(), ensure_ascii=False, indent=1, sort_keys=True)
        )
    return done


# -- reading ----------------------------------------------------------------------


def read_version(
    source: str | Path | bytes,
    *,
    trusted_keys: Mapping[str, Ed25519PublicKey],
    require_signature: bool = True,
) -> VersionFile:
    """Checks a version file whole and returns it; raises ``VersionFileError``.

    ``trusted_keys`` maps key ids to the publishers' public keys. A signature
    by an unknown key, or a bad one, is refused; an unsigned file only when
    ``require_signature`` is off (a national file without a signature)."""
    opener = _opener(source)
    try:
        return _read(opener, trusted_keys, require_signature)
    except VersionFileError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        RuntimeError,  # zipfile: "encrypted", bad headers
        NotImplementedError,  # zipfile: an unknown compression method
        ValueError,  # zipfile and the text decoder on damaged bytes
    ) as error:
        raise VersionFileError("zip", f"the file is damaged ({error})") from None


def _read(
    opener: Callable[[], zipfile.ZipFile],
    trusted_keys: Mapping[str, Ed25519PublicKey],
    require_signature: bool,
) -> VersionFile:
    with opener() as archive:
        names = set(archive.namelist())
        for needed in (MANIFEST, ENTRIES):
            if needed not in names:
                raise VersionFileError("zip", f"{needed} is missing")
        try:
            raw_manifest = json.loads(archive.read(MANIFEST))
        except (ValueError, UnicodeDecodeError) as error:
            raise VersionFileError("manifest", f"not JSON ({error})") from None
        manifest = _manifest(raw_manifest)
        digest = hashlib.sha256()
        with archive.open(ENTRIES) as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    if digest.hexdigest() != manifest.sha256:
        raise VersionFileError("sha256", "the entries do not match the manifest's checksum")
    _check_signature(manifest, trusted_keys, require_signature)

    def lines() -> Iterator[Line]:
        with opener() as archive, archive.open(ENTRIES) as stream:
            yield from _lines(stream, manifest)

    count = 0
    for _line in lines():
        count += 1
    if count != manifest.count:
        raise VersionFileError("manifest.count", f"says {manifest.count}, the file has {count}")
    return VersionFile(manifest, lines)


def _opener(source: str | Path | bytes) -> Callable[[], zipfile.ZipFile]:
    def opener() -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
        except (zipfile.BadZipFile, OSError) as error:
            raise VersionFileError("zip", f"not a readable zip file ({error})") from None

    return opener


def _check_signature(
    manifest: Manifest, trusted: Mapping[str, Ed25519PublicKey], required: bool
) -> None:
    signature = manifest.signature
    if signature is None:
        if required:
            raise VersionFileError("signature", "the file is not signed")
        return
    if signature.get("alg") != "ed25519":
        raise VersionFileError("signature", f"unknown algorithm {signature.get('alg')!r}")
    key = trusted.get(str(signature.get("key_id", "")))
    if key is None:
        raise VersionFileError(
            "signature", f"signed by key {signature.get('key_id')!r}, which is not trusted"
        )
    try:
        key.verify(
            base64.b64decode(str(signature.get("value", "")), validate=True),
            manifest.signed_bytes(),
        )
    except (InvalidSignature, ValueError):
        raise VersionFileError("signature", "the signature does not verify") from None


def _check_manifest_fields(m: Manifest) -> None:
    if m.format != FORMAT:
        raise VersionFileError("manifest.format", f"must be {FORMAT!r}, got {m.format!r}")
    if m.kind not in ("full", "increment"):
        raise VersionFileError("manifest.kind", f"must be full or increment, got {m.kind!r}")
    if not isinstance(m.version, str) or not _VERSION.match(m.version):
        raise VersionFileError("manifest.version", f"must be yyyyMMddHHmm, got {m.version!r}")
    if m.previous is not None and (
        not isinstance(m.previous, str) or not _VERSION.match(m.previous)
    ):
        raise VersionFileError("manifest.previous", f"must be yyyyMMddHHmm, got {m.previous!r}")
    if m.previous is not None and m.previous >= m.version:
        raise VersionFileError("manifest.previous", "must be older than the version")
    if m.kind == "full" and m.previous is not None:
        raise VersionFileError("manifest.previous", "a full version has no previous version")
    try:
        dt.datetime.fromisoformat(m.created_at)
    except (TypeError, ValueError):
        raise VersionFileError(
            "manifest.created_at", f"not an ISO time: {m.created_at!r}"
        ) from None
    try:
        IssuerTable(m.issuers)
    except ListKeyError as error:
        raise VersionFileError("manifest.issuers", error.message) from None
    for name in ("count", "list_size"):
        value = getattr(m, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise VersionFileError(f"manifest.{name}", f"must be a count, got {value!r}")


def _manifest(raw: object) -> Manifest:
    if not isinstance(raw, dict):
        raise VersionFileError("manifest", "must be a JSON object")
    known = set(Manifest.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise VersionFileError("manifest", f"unknown fields {sorted(unknown)}")
    for needed in ("kind", "version", "publisher", "created_at", "issuers", "sha256"):
        if needed not in raw:
            raise VersionFileError(f"manifest.{needed}", "is missing")
    issuers = raw["issuers"]
    if not isinstance(issuers, list) or not all(isinstance(i, str) for i in issuers):
        raise VersionFileError("manifest.issuers", "must be a list of network numbers")
    signature = raw.get("signature")
    if signature is not None and not (
        isinstance(signature, dict) and all(isinstance(v, str) for v in signature.values())
    ):
        raise VersionFileError("manifest.signature", "must be an object of strings")
    manifest = Manifest(
        kind=raw["kind"],
        version=raw["version"],
        previous=raw.get("previous"),
        publisher=str(raw["publisher"]),
        created_at=raw["created_at"],
        issuers=tuple(issuers),
        count=raw.get("count", 0),
        list_size=raw.get("list_size", 0),
        sha256=str(raw["sha256"]),
        signature=signature,
        format=raw.get("format", ""),
    )
    _check_manifest_fields(manifest)
    return manifest


_FIELDS = frozenset(("medium", "id", "type", "status", "issuer", "since", "reason"))
_BLOCK = 8192  # lines parsed by one json.loads


def _lines(stream: IO[bytes], manifest: Manifest) -> Iterator[Line]:
    """Entries one per line (the form etcnet writes), parsed a block of lines at
    a time; any other JSON array layout is read whole."""
    networks = frozenset(manifest.issuers)
    text = io.TextIOWrapper(stream, encoding="utf-8")
    first, second = text.readline(), text.readline()
    one_per_line = first.strip() == "[" and (
        second.strip() == "]" or second.strip().removesuffix(",").endswith("}")
    )
    if not one_per_line:
        rest = first + second + text.read()
        try:
            items = json.loads(rest)
        except ValueError as error:
            raise VersionFileError("entries", f"not JSON ({error})") from None
        if not isinstance(items, list):
            raise VersionFileError("entries", "must be a JSON array")
        for n, item in enumerate(items):
            yield _line(item, n, manifest.kind, networks)
        return
    n = 0
    closed = False
    block: list[str] = []
    for raw in itertools.chain([second], text):
        stripped = raw.strip()
        if stripped == "]":
            closed = True
            continue
        if closed:
            if stripped:
                raise VersionFileError("entries", "text after the closing bracket")
            continue
        if stripped:
            block.append(stripped.removeprefix(",").removesuffix(","))
        if len(block) >= _BLOCK:
            yield from _block(block, n, manifest.kind, networks)
            n += len(block)
            block = []
    yield from _block(block, n, manifest.kind, networks)
    if not closed:
        raise VersionFileError("entries", "the array is not closed")


def _block(block: list[str], start: int, kind: str, networks: frozenset[str]) -> Iterator[Line]:
    if not block:
        return
    try:
        items = json.loads("[" + ",".join(block) + "]")
    except ValueError:
        items = None
    if not isinstance(items, list) or len(items) != len(block):
        # Find the line at fault.
        for offset, line in enumerate(block):
            try:
                json.loads(line)
            except ValueError as error:
                raise VersionFileError(
                    f"entries[{start + offset}]", f"not JSON ({error})"
                ) from None
        raise VersionFileError(f"entries[{start}]", "a line holds more than one entry")
    for offset, item in enumerate(items):
        yield _line(item, start + offset, kind, networks)


def _line(item: object, n: int, kind: str, networks: frozenset[str]) -> Line:
    where = f"entries[{n}]"
    if type(item) is not dict:
        raise VersionFileError(where, "must be a JSON object")
    if not item.keys() <= _FIELDS:
        raise VersionFileError(where, f"unknown fields {sorted(set(item) - _FIELDS)}")
    medium, number = item.get("medium"), item.get("id")
    list_type, status = item.get("type"), item.get("status", IN)
    if type(list_type) is not int or list_type not in TYPES:
        raise VersionFileError(f"{where}.type", f"must be 1 to 7, got {list_type!r}")
    if type(status) is not int or status not in (IN, OUT):
        raise VersionFileError(f"{where}.status", f"must be 1 (in) or 2 (out), got {status!r}")
    if kind == "full" and status != IN:
        raise VersionFileError(f"{where}.status", "a full version lists entries only (status 1)")
    if type(number) is not str:
        raise VersionFileError(f"{where}.id", f"must be a string of digits, got {number!r}")
    digits = len(number) if number.isascii() and number.isdigit() else -1
    if medium == "card":
        if digits != 20:
            raise VersionFileError(f"{where}.id", f"must be 20 digits, got {number!r}")
        if number[:4] not in networks:
            raise VersionFileError(
                f"{where}.id", f"card network {number[:4]} is not in the manifest's issuers"
            )
    elif medium == "obu":
        if digits != 16:
            raise VersionFileError(f"{where}.id", f"must be 16 digits, got {number!r}")
    else:
        raise VersionFileError(f"{where}.medium", f"must be card or obu, got {medium!r}")
    issuer, since, reason = item.get("issuer", ""), item.get("since", ""), item.get("reason", "")
    for name, value in (("issuer", issuer), ("since", since), ("reason", reason)):
        if type(value) is not str:
            raise VersionFileError(f"{where}.{name}", f"must be a string, got {value!r}")
    return Line(medium, number, list_type, status, issuer, since, reason)
