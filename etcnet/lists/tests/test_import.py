"""Importing national / other-issuer list files: all or nothing, a bad file is
refused with the reason and changes nothing, the same file twice is applied once."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from etcnet.core.models import AuditEvent
from etcnet.lists import services
from etcnet.lists.models import ListEntry, ListImport, ListVersion
from etcnet.lists.versionfile import Line, Manifest, public_key_text, write_version

pytestmark = pytest.mark.django_db

NATIONAL = Ed25519PrivateKey.generate()
T0 = dt.datetime(2026, 11, 21, 4, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _trust_the_national_center(settings: Any) -> None:
    settings.ETCNET_LIST_TRUSTED_KEYS = [public_key_text(NATIONAL.public_key())]


def national(
    kind: str,
    version: str,
    lines: list[Line],
    *,
    previous: str | None = None,
    signer: Ed25519PrivateKey | None = NATIONAL,
) -> bytes:
    out = io.BytesIO()
    write_version(
        out,
        Manifest(
            kind=kind,  # type: ignore[arg-type]
            version=version,
            previous=previous,
            publisher="000000",
            created_at="2026-11-21T04:00:00+00:00",
            issuers=("1101", "3201"),
        ),
        lines,
        signer=signer,
    )
    return out.getvalue()


FULL = [
    Line("card", "11010000000000000001", 1, reason="挂失"),
    Line("card", "32010000000000000002", 7),
    Line("obu", "1101000000000003", 5),
]


def open_entries() -> set[tuple[str, str, int]]:
    return set(
        ListEntry.objects.filter(left_at__isnull=True).values_list(
            "medium", "medium_id", "list_type"
        )
    )


def test_a_full_file_then_an_increment_then_the_same_file_again(operator: Any) -> None:
    data = national("full", "202611211200", FULL)
    row = services.import_file(data, filename="BLACK_ALL_000000.zip", actor=operator)
    assert (row.result, row.lines, row.adds, row.removes) == ("applied", 3, 3, 0)
    assert len(open_entries()) == 3

    increment = national(
        "increment",
        "202611211205",
        [
            Line("card", "32010000000000000002", 7, status=2),
            Line("card", "11010000000000000009", 4),
        ],
        previous="202611211200",
    )
    row = services.import_file(increment, filename="BLACK_INCR.zip", actor=operator)
    assert (row.result, row.adds, row.removes) == ("applied", 1, 1)
    assert ("card", "32010000000000000002", 7) not in open_entries()

    again = services.import_file(increment, filename="BLACK_INCR.zip", actor=operator)
    assert again.result == "already"
    assert len(open_entries()) == 3

    # A later full file replaces the publisher's whole list.
    services.import_file(
        national("full", "202611211210", FULL[:1]), filename="BLACK_ALL_2.zip", actor=operator
    )
    assert open_entries() == {("card", "11010000000000000001", 1)}

    # The next version carries the imports to the lanes.
    v = services.publish(now=T0 + dt.timedelta(minutes=15)).version
    assert (v.adds, v.list_size) == (1, 1)
    assert ListEntry.objects.filter(imported_in__isnull=False).count() == 4  # 3 + 1 created
    assert AuditEvent.objects.filter(action="lists.file_imported").count() == 4


def corrupted(data: bytes) -> bytes:
    """The entries member rewritten: the manifest's checksum no longer matches."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            body = source.read(name)
            if name == "entries.json":
                body = body.replace(b'"type":1', b'"type":2')
            target.writestr(name, body)
    return out.getvalue()


def bad_line() -> bytes:
    return national("full", "202611211200", [*FULL, Line("card", "9999", 1)])


@pytest.mark.parametrize(
    ("make", "field", "words"),
    [
        (lambda: b"PK not a zip", "zip", "not a readable zip"),
        (lambda: corrupted(national("full", "202611211200", FULL)), "sha256", "checksum"),
        (
            lambda: national("full", "202611211200", FULL, signer=Ed25519PrivateKey.generate()),
            "signature",
            "not trusted",
        ),
        (bad_line, "entries[3].id", "20 digits"),
        (
            lambda: national("increment", "202611211205", FULL[:1], previous="202611211200"),
            "manifest.previous",
            "import a full file",
        ),
    ],
)
def test_a_bad_file_is_refused_with_the_reason_and_changes_nothing(
    operator: Any, make: Any, field: str, words: str
) -> None:
    services.import_file(
        national("full", "202611211100", FULL[1:]), filename="first.zip", actor=operator
    )
    services.publish(now=T0)
    before = (open_entries(), ListVersion.objects.count(), ListEntry.objects.count())

    row = services.import_file(make(), filename="bad.zip", actor=operator)

    assert row.result == ListImport.Result.REFUSED
    assert row.field == field
    assert words in row.report
    assert (open_entries(), ListVersion.objects.count(), ListEntry.objects.count()) == before
    assert AuditEvent.objects.filter(action="lists.file_refused").count() == 1


def test_an_unsigned_file_is_refused_when_signatures_are_required(
    operator: Any, settings: Any
) -> None:
    settings.ETCNET_LIST_IMPORT_UNSIGNED = False
    row = services.import_file(
        national("full", "202611211200", FULL, signer=None), filename="u.zip", actor=operator
    )
    assert (row.result, row.field) == ("refused", "signature")
    assert open_entries() == set()
    settings.ETCNET_LIST_IMPORT_UNSIGNED = True
    row = services.import_file(
        national("full", "202611211200", FULL, signer=None), filename="u.zip", actor=operator
    )
    assert row.result == "applied"
