"""The pure pieces: 64-bit keys and the version-file format."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from etcnet.lists.keys import IssuerTable, ListKeyError, decode_key, mask_of, types_of
from etcnet.lists.versionfile import (
    Line,
    Manifest,
    VersionFileError,
    key_id,
    read_version,
    write_version,
)

KEY = Ed25519PrivateKey.generate()
TRUST = {key_id(KEY.public_key()): KEY.public_key()}
NETWORKS = ["1101", "1201", "3201", "6101"]


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


numbers = st.one_of(
    st.tuples(
        st.just("card"), st.builds(lambda n, s: n + s, st.sampled_from(NETWORKS), digits(16))
    ),
    st.tuples(st.just("obu"), digits(16)),
)


@given(st.lists(numbers, min_size=1, max_size=50))
def test_keys_round_trip_and_sort_by_medium_issuer_serial(items: list[tuple[str, str]]) -> None:
    table = IssuerTable(NETWORKS)
    keys = table.keys(items)
    assert all(k is not None and 0 <= k < 1 << 64 for k in keys)
    assert [decode_key(k, table) for k in keys if k is not None] == items
    ordered = sorted(zip(keys, items, strict=True), key=lambda pair: pair[0] or 0)
    assert [i for _, i in ordered] == sorted(
        items,
        key=lambda i: (i[0] == "obu", NETWORKS.index(i[1][:4]) if i[0] == "card" else 0, i[1]),
    )


def test_key_layout_and_refusals() -> None:
    table = IssuerTable(["6101", "1201"])
    assert table.key("card", "12010000000000000005") == (1 << 54) | 5
    assert table.key("obu", "0000000000000007") == (1 << 63) | 7
    assert table.key("card", "32010000000000000001") is None  # not in the table: not listed
    assert table.key("card", "32010000000000000001", assign=True) == (2 << 54) | 1
    for medium, number, field in [
        ("card", "6101000000000000001", "card_no"),
        ("card", "6101000000000000000X", "card_no"),
        ("obu", "１２３４５６７８９０１２３４５６", "obu_no"),
        ("cpc", "1234567890123456", "medium"),
    ]:
        with pytest.raises(ListKeyError) as refused:
            table.key(medium, number)
        assert refused.value.field == field
    assert types_of(mask_of([7, 1, 4])) == (1, 4, 7)
    with pytest.raises(ListKeyError):
        mask_of([8])
    assert IssuerTable(["6101", "1201", "3201"]).extends(table)
    assert not IssuerTable(["1201", "6101"]).extends(table)


def manifest(**overrides: object) -> Manifest:
    fields: dict[str, object] = {
        "kind": "increment",
        "version": "202611211205",
        "previous": "202611211200",
        "publisher": "etcnet-center",
        "created_at": "2026-11-21T04:05:00+00:00",
        "issuers": ("6101",),
    }
    return Manifest(**{**fields, **overrides})  # type: ignore[arg-type]


def build(m: Manifest, lines: list[Line]) -> bytes:
    out = io.BytesIO()
    write_version(out, m, lines, signer=KEY)
    return out.getvalue()


def rewrite(data: bytes, name: str, change: object) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for member in source.namelist():
            body = source.read(member)
            target.writestr(member, change(body) if member == name else body)  # type: ignore[operator]
    return out.getvalue()


def test_a_file_reads_back_line_by_line_or_whole() -> None:
    lines = [
        Line("card", "61010000000000000001", 1, reason="挂失"),
        Line("obu", "6101000000000001", 6, 2),
    ]
    data = build(manifest(), lines)
    assert list(read_version(data, trusted_keys=TRUST).lines()) == lines
    # The same entries pretty-printed (another publisher's layout) read the same,
    # given the checksum and signature are of that file.
    pretty = json.dumps([json.loads(x.as_json()) for x in lines], indent=2).encode()
    raw = rewrite(data, "entries.json", lambda _b: pretty)
    m = read_version(data, trusted_keys=TRUST).manifest
    resigned = build_with_entries(m, pretty)
    assert list(read_version(resigned, trusted_keys=TRUST).lines()) == lines
    with pytest.raises(VersionFileError) as refused:
        read_version(raw, trusted_keys=TRUST)
    assert refused.value.field == "sha256"
    assert hashlib.sha256(pretty).hexdigest() != m.sha256


def build_with_entries(m: Manifest, entries: bytes) -> bytes:
    """A file with these exact entries bytes, checksummed and signed."""
    signed = dataclasses.replace(m, sha256=hashlib.sha256(entries).hexdigest(), signature=None)
    signed = dataclasses.replace(
        signed,
        signature={
            "alg": "ed25519",
            "key_id": key_id(KEY.public_key()),
            "value": base64.b64encode(KEY.sign(signed.signed_bytes())).decode(),
        },
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        target.writestr("entries.json", entries)
        target.writestr("manifest.json", json.dumps(signed.as_json()))
    return out.getvalue()


@pytest.mark.parametrize(
    ("m", "lines", "field"),
    [
        (
            manifest(kind="full", previous=None),
            [Line("obu", "6101000000000001", 6, 2)],
            "entries[0].status",
        ),
        (manifest(), [Line("card", "12010000000000000001", 1)], "entries[0].id"),
        (manifest(), [Line("card", "61010000000000000001", 9)], "entries[0].type"),
        (manifest(), [Line("pass", "61010000000000000001", 1)], "entries[0].medium"),
    ],
)
def test_bad_lines_name_the_line_and_field(m: Manifest, lines: list[Line], field: str) -> None:
    with pytest.raises(VersionFileError) as refused:
        read_version(build(m, lines), trusted_keys=TRUST)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"version": "2026112112"}, "manifest.version"),
        ({"previous": "202611211210"}, "manifest.previous"),
        ({"kind": "full"}, "manifest.previous"),
        ({"kind": "delta"}, "manifest.kind"),
        ({"issuers": ("61O1",)}, "manifest.issuers"),
        ({"created_at": "yesterday"}, "manifest.created_at"),
    ],
)
def test_bad_manifests_are_refused_on_writing(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(VersionFileError) as refused:
        build(manifest(**overrides), [])
    assert refused.value.field == field


def test_a_tampered_manifest_fails_its_signature() -> None:
    data = build(manifest(), [Line("card", "61010000000000000001", 1)])

    def shrink(body: bytes) -> bytes:
        parsed = json.loads(body)
        parsed["publisher"] = "somebody else"
        return json.dumps(parsed).encode()

    with pytest.raises(VersionFileError) as refused:
        read_version(rewrite(data, "manifest.json", shrink), trusted_keys=TRUST)
    assert refused.value.field == "signature"
    with pytest.raises(VersionFileError) as unknown:
        read_version(
            rewrite(data, "manifest.json", lambda b: b[:-1] + b', "extra": 1}'),
            trusted_keys=TRUST,
        )
    assert unknown.value.field == "manifest"


def test_damaged_bytes_anywhere_are_a_version_file_error() -> None:
    data = build(manifest(), [Line("card", "61010000000000000001", 1)] * 3)
    for at in range(0, len(data), 7):
        damaged = data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1 :]
        try:
            found = read_version(damaged, trusted_keys=TRUST)
        except VersionFileError:
            continue
        # A flip no check covers (zip padding, a date field) still reads the same list.
        assert list(found.lines()) == [Line("card", "61010000000000000001", 1)] * 3
