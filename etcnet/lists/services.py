"""Status-list services: recording events (inside the caller's transaction),
publishing versions, importing files from outside (docs/lists.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from etcnet.core import audit
from etcnet.lists.keys import IssuerTable
from etcnet.lists.models import (
    LOCAL_SOURCE,
    ListEntry,
    ListEvent,
    ListImport,
    ListIssuer,
    ListStatus,
    ListType,
    ListVersion,
    Medium,
    PublisherLock,
)
from etcnet.lists.signing import signing_key, trusted_keys
from etcnet.lists.versionfile import Line, Manifest, VersionFileError, read_version, write_version


def record_event(
    *,
    medium: Medium,
    medium_id: str,
    list_type: ListType,
    status: ListStatus,
    reason: str,
    actor: Any,
    issuer_id: str = "",
) -> ListEvent:
    """A card or OBU enters (status 1) or leaves (status 2) the list for one type.

    Must run inside the transaction of the state change it reflects, so the list
    never disagrees with the card's state."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("list events are recorded inside the state change's transaction")
    return ListEvent.objects.create(
        medium=medium,
        medium_id=medium_id,
        list_type=list_type,
        status=status,
        reason=reason,
        issuer_id=issuer_id,
        occurred_at=timezone.now(),
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )


# -- publishing ---------------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


def version_number(moment: dt.datetime) -> str:
    """yyyyMMddHHmm in Asia/Shanghai: the minute a version is published."""
    return moment.astimezone(SHANGHAI).strftime("%Y%m%d%H%M")


@dataclass(frozen=True)
class PublishReport:
    version: ListVersion
    created: bool  # False: this minute's version already existed (a second run)
    full_written: bool


def _lock() -> None:
    PublisherLock.objects.get_or_create(id=1)
    PublisherLock.objects.select_for_update().get(id=1)


def publish(
    *, now: dt.datetime | None = None, full: bool = False, actor: Any = "etcnet lists publish"
) -> PublishReport:
    """Publishes the increment of this minute — the list events and imports since
    the last version — and, with ``full`` (and always for the very first
    version), the full version of the same state.

    Safe to run twice: a second run in the same minute finds the version made
    and only adds the full version if asked and missing. Audits
    ``lists.version_published`` / ``lists.full_version_published``."""
    moment = now or timezone.now()
    number = version_number(moment)
    with transaction.atomic(durable=True):
        _lock()
        latest = ListVersion.objects.order_by("-number").first()
        if latest is not None and latest.number >= number:
            version, created = latest, False
        else:
            version, created = _publish_increment(number, latest, moment, actor), True
        full_written = False
        # The first version is always full too, so a new terminal can start.
        if (full or latest is None) and not version.full_file:
            _publish_full(version, moment, actor)
            full_written = True
    return PublishReport(version, created, full_written)


def _fold_events(moment: dt.datetime) -> None:
    """This center's pending list events into its ``local`` entries."""
    pending = list(
        ListEvent.objects.filter(published_at__isnull=True).order_by("occurred_at", "id")
    )
    if not pending:
        return
    ids = {e.medium_id for e in pending}
    open_entries: dict[tuple[str, str, int], ListEntry] = {
        (e.medium, e.medium_id, e.list_type): e
        for e in ListEntry.objects.filter(
            source=LOCAL_SOURCE, left_at__isnull=True, medium_id__in=ids
        )
    }
    touched: dict[int, ListEntry] = {}
    created: list[ListEntry] = []
    for event in pending:
        key = (event.medium, event.medium_id, event.list_type)
        entry = open_entries.get(key)
        if event.status == ListStatus.IN and entry is None:
            entry = ListEntry(
                medium=event.medium,
                medium_id=event.medium_id,
                list_type=event.list_type,
                source=LOCAL_SOURCE,
                issuer_id=event.issuer_id,
                reason=event.reason,
                since=event.occurred_at,
                event=event,
            )
            open_entries[key] = entry
            created.append(entry)
        elif event.status == ListStatus.OUT and entry is not None:
            entry.left_at = event.occurred_at
            del open_entries[key]
            if entry.pk is not None:
                touched[entry.pk] = entry
    # Close first: an entry that left and came back in this round is a new open
    # entry beside the closed one (one open entry per key).
    ListEntry.objects.bulk_update(list(touched.values()), ["left_at"], batch_size=2000)
    ListEntry.objects.bulk_create(created, batch_size=2000)
    ListEvent.objects.filter(pk__in=[e.pk for e in pending]).update(published_at=moment)


def _issuers(networks: set[str]) -> IssuerTable:
    """The issuer table with every network of ``networks`` in it (new ones get the
    next indexes, stored for good)."""
    known = dict(ListIssuer.objects.values_list("network", "index"))
    table = IssuerTable(sorted(known, key=known.__getitem__))
    for network in sorted(networks - set(known)):
        ListIssuer.objects.create(network=network, index=table.add(network))
    return table


def _publish_increment(
    number: str, latest: ListVersion | None, moment: dt.datetime, actor: Any
) -> ListVersion:
    _fold_events(moment)
    pending = ListEntry.objects.filter(
        Q(added_in__isnull=True, removed_in__isnull=True)
        | Q(left_at__isnull=False, removed_in__isnull=True)
    )
    candidates = set(pending.values_list("medium", "medium_id", "list_type"))
    lines: list[Line] = []
    by_id: dict[tuple[str, str], list[ListEntry]] = {}
    ids = sorted({medium_id for _m, medium_id, _t in candidates})
    for start in range(0, len(ids), 5000):
        for entry in ListEntry.objects.filter(medium_id__in=ids[start : start + 5000]).order_by(
            "since", "id"
        ):
            by_id.setdefault((entry.medium, entry.medium_id), []).append(entry)
    for medium, medium_id, list_type in sorted(candidates):
        entries = [e for e in by_id[(medium, medium_id)] if e.list_type == list_type]
        before = any(e.added_in_id is not None and e.removed_in_id is None for e in entries)
        open_now = [e for e in entries if e.left_at is None]
        if open_now and not before:
            first = open_now[0]
            lines.append(
                Line(
                    medium=medium,
                    id=medium_id,
                    type=list_type,
                    status=ListStatus.IN,
                    issuer=first.issuer_id,
                    since=first.since.astimezone(dt.UTC).isoformat(),
                    reason=first.reason,
                )
            )
        elif before and not open_now:
            lines.append(Line(medium=medium, id=medium_id, type=list_type, status=ListStatus.OUT))
    table = _issuers({line.id[:4] for line in lines if line.medium == Medium.CARD})
    version = ListVersion.objects.create(
        number=number,
        previous=latest.number if latest else "",
        published_at=moment,
        adds=sum(1 for line in lines if line.status == ListStatus.IN),
        removes=sum(1 for line in lines if line.status == ListStatus.OUT),
    )
    pending.filter(left_at__isnull=True).update(added_in=version)
    pending.filter(left_at__isnull=False).update(removed_in=version)
    version.list_size = _list_size()
    manifest = _write(
        f"STATUSLIST_INCR_{number}.zip",
        Manifest(
            kind="increment",
            version=number,
            previous=version.previous or None,
            publisher=settings.ETCNET_LIST_PUBLISHER,
            created_at=moment.astimezone(dt.UTC).isoformat(),
            issuers=table.networks,
            list_size=version.list_size,
        ),
        lines,
    )
    version.file = f"STATUSLIST_INCR_{number}.zip"
    version.sha256 = manifest.sha256
    version.signature = manifest.signature or {}
    version.save()
    audit.record(
        actor=actor,
        action="lists.version_published",
        subject=version,
        after={
            "number": number,
            "previous": version.previous,
            "adds": version.adds,
            "removes": version.removes,
            "list_size": version.list_size,
        },
    )
    return version


def _list_size() -> int:
    return (
        ListEntry.objects.filter(added_in__isnull=False, removed_in__isnull=True)
        .values("medium", "medium_id", "list_type")
        .distinct()
        .count()
    )


def _publish_full(version: ListVersion, moment: dt.datetime, actor: Any) -> None:
    """The full version of ``version``'s state: every (medium, id, type) that
    terminals holding ``version`` have on their list."""

    def lines() -> Iterator[Line]:
        last: tuple[str, str, int] | None = None
        for entry in (
            ListEntry.objects.filter(added_in__isnull=False, removed_in__isnull=True)
            .order_by("medium", "medium_id", "list_type", "since", "id")
            .iterator(chunk_size=10_000)
        ):
            key = (entry.medium, entry.medium_id, entry.list_type)
            if key == last:
                continue
            last = key
            yield Line(
                medium=entry.medium,
                id=entry.medium_id,
                type=entry.list_type,
                issuer=entry.issuer_id,
                since=entry.since.astimezone(dt.UTC).isoformat(),
                reason=entry.reason,
            )

    name = f"STATUSLIST_FULL_{version.number}.zip"
    manifest = _write(
        name,
        Manifest(
            kind="full",
            version=version.number,
            previous=None,
            publisher=settings.ETCNET_LIST_PUBLISHER,
            created_at=moment.astimezone(dt.UTC).isoformat(),
            issuers=_issuers(set()).networks,
            list_size=version.list_size,
        ),
        lines(),
    )
    version.full_file = name
    version.full_sha256 = manifest.sha256
    version.full_signature = manifest.signature or {}
    version.full_published_at = moment
    version.save(update_fields=["full_file", "full_sha256", "full_signature", "full_published_at"])
    audit.record(
        actor=actor,
        action="lists.full_version_published",
        subject=version,
        after={"number": version.number, "list_size": manifest.count},
    )


def _write(name: str, manifest: Manifest, lines: Iterable[Line]) -> Manifest:
    """Writes a version file beside the others: a temporary file, fsynced, renamed."""
    directory = Path(settings.ETCNET_LIST_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{name}.tmp"
    with temporary.open("wb") as out:
        written = write_version(out, manifest, lines, signer=signing_key())
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, directory / name)
    return written


def version_path(version: ListVersion, *, full: bool = False) -> Path:
    return Path(settings.ETCNET_LIST_DIR) / (version.full_file if full else version.file)


# -- importing ----------------------------------------------------------------------


class ImportRefused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def import_file(data: bytes, *, filename: str, actor: Any) -> ListImport:
    """A national or other-issuer list file, applied all or nothing.

    A full file replaces what that publisher had on the list; an increment must
    follow the last file applied from the same publisher. A refused file is
    kept with the reason (the field and the message) and changes nothing else;
    the same file twice is recognised and not applied again. The next
    published version carries the changes. Audits ``lists.file_imported`` /
    ``lists.file_refused``."""
    digest = hashlib.sha256(data).hexdigest()
    moment = timezone.now()
    with transaction.atomic(durable=True):
        _lock()
        row = ListImport.objects.create(
            filename=filename[:200],
            file_sha256=digest,
            imported_at=moment,
            actor=actor if getattr(actor, "is_authenticated", False) else None,
            result=ListImport.Result.REFUSED,
        )
        if ListImport.objects.filter(file_sha256=digest, result=ListImport.Result.APPLIED).exists():
            row.result = ListImport.Result.ALREADY
            row.report = "this file was imported before; nothing changed"
        else:
            try:
                with transaction.atomic():
                    _apply_import(row, data, moment)
                row.result = ListImport.Result.APPLIED
            except (VersionFileError, ImportRefused) as refused:
                row.field, row.report = refused.field, refused.message
                row.adds = row.removes = row.lines = 0
        row.save()
        audit.record(
            actor=actor,
            action="lists.file_refused"
            if row.result == ListImport.Result.REFUSED
            else "lists.file_imported",
            subject=row,
            after={
                "filename": row.filename,
                "result": row.result,
                "publisher": row.publisher,
                "version": row.version,
                "adds": row.adds,
                "removes": row.removes,
                "report": row.report,
            },
        )
    return row


def _apply_import(row: ListImport, data: bytes, moment: dt.datetime) -> None:
    found = read_version(
        data,
        trusted_keys=trusted_keys(),
        require_signature=not settings.ETCNET_LIST_IMPORT_UNSIGNED,
    )
    m = found.manifest
    row.publisher, row.kind, row.version, row.lines = m.publisher, m.kind, m.version, m.count
    if m.publisher == settings.ETCNET_LIST_PUBLISHER:
        raise ImportRefused("manifest.publisher", "this is this center's own list")
    source = f"import:{m.publisher}"[:40]
    last = (
        ListImport.objects.filter(publisher=m.publisher, result=ListImport.Result.APPLIED)
        .order_by("-version")
        .first()
    )
    if last is not None and m.version <= last.version:
        raise ImportRefused(
            "manifest.version", f"{m.version} is not newer than {last.version}, applied before"
        )
    if m.kind == "increment" and (last is None or m.previous != last.version):
        raise ImportRefused(
            "manifest.previous",
            f"the increment follows {m.previous}, but the last file applied from "
            f"{m.publisher} is {last.version if last else 'none'}: import a full file",
        )
    open_entries = {
        (e.medium, e.medium_id, e.list_type): e
        for e in ListEntry.objects.filter(source=source, left_at__isnull=True)
    }
    wanted: dict[tuple[str, str, int], Line] = {}
    leaving: set[tuple[str, str, int]] = set()
    for line in found.lines():
        key = (line.medium, line.id, line.type)
        if line.status == ListStatus.IN:
            wanted[key] = line
            leaving.discard(key)
        else:
            wanted.pop(key, None)
            leaving.add(key)
    if m.kind == "full":
        leaving = set(open_entries) - set(wanted)
    new = [
        ListEntry(
            medium=line.medium,
            medium_id=line.id,
            list_type=line.type,
            source=source,
            issuer_id=line.issuer[:16],
            reason=line.reason[:200],
            since=moment,
            imported_in=row,
        )
        for key, line in wanted.items()
        if key not in open_entries
    ]
    ListEntry.objects.bulk_create(new, batch_size=5000)
    closing = [open_entries[key].pk for key in leaving if key in open_entries]
    for start in range(0, len(closing), 5000):
        ListEntry.objects.filter(pk__in=closing[start : start + 5000]).update(left_at=moment)
    row.adds, row.removes = len(new), len(closing)
