"""The clearing pages (/clearing/) for center operators and auditors: the days
with their runs, a day's totals, positions and owner shares, the reports
(数据统计), the lane payments (交款信息统计表), the statements, the disputes held
and the drill-down from any total to its transactions. Every table exports to
Excel (`?format=xlsx`, `&table=` for one). The pages only read: each view
checks its filters and renders what `reports` and `statements` give."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from etcnet.clearing import statements
from etcnet.clearing.models import ClearingDay
from etcnet.clearing.reports import days as days_report
from etcnet.clearing.reports import drill, figures, tables
from etcnet.clearing.reports.tables import (
    TEXT,
    Column,
    FilterError,
    Period,
    Row,
    Table,
)
from etcnet.core.roles import Role, may_see_personal_data, role_required

READERS = (Role.CENTER_OPERATOR, Role.AUDITOR)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# -- rendering -------------------------------------------------------------------------


def _drill_url(row: Row, column: Column) -> str:
    if row.drill is None or column.drill is None:
        return ""
    return reverse("clearing:transactions") + "?" + urlencode(row.drill | dict(column.drill))


def _shown(
    request: HttpRequest, table: Table, actions: Callable[[Row], list[tuple[str, str]]] | None
) -> dict[str, Any]:
    """A table as the template draws it: each cell's text, link and alignment,
    and the row's `actions` (label, link) if the page gives them."""
    query = request.GET.copy()
    query["format"], query["table"] = "xlsx", table.name
    rows = []
    for row in table.rows:
        cells = []
        for index, column in enumerate(table.columns):
            href = _drill_url(row, column) or (row.href if index == 0 else "")
            cells.append(
                {
                    "text": tables.display(column.kind, row.values.get(column.key)),
                    "href": href,
                    "number": column.kind != TEXT,
                    "wrap": column.wrap,
                    "label": column.label,
                    "key": column.key,
                }
            )
        found = actions(row) if actions is not None and not row.total else []
        key = cells[0]["text"] if cells else ""
        rows.append({"cells": cells, "total": row.total, "actions": found, "key": key})
    return {
        "name": table.name,
        "title": table.title,
        "columns": [{"label": c.label, "number": c.kind != TEXT} for c in table.columns],
        "rows": rows,
        "note": table.note,
        "actions": actions is not None,
        "export": "?" + query.urlencode(),
    }


def _download(content: bytes, filename: str, content_type: str = XLSX) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    shown: Sequence[Table],
    *,
    filename: str,
    actions: dict[str, Callable[[Row], list[tuple[str, str]]]] | None = None,
) -> HttpResponse:
    """The page, or with `?format=xlsx` its tables as a workbook (`&table=`: one)."""
    if request.GET.get("format") == "xlsx":
        wanted = request.GET.get("table", "")
        chosen = [t for t in shown if t.name == wanted] if wanted else list(shown)
        if not chosen:
            raise Http404
        heading = [f"{_('Made at')}: {tables.local_time(timezone.now())}"]
        return _download(tables.workbook(chosen, heading), f"{filename}.xlsx")
    context["tables"] = {t.name: _shown(request, t, (actions or {}).get(t.name)) for t in shown}
    return TemplateResponse(request, template, context)


def _refused(
    request: HttpRequest, template: str, error: FilterError, context: dict[str, Any]
) -> HttpResponse:
    return TemplateResponse(
        request,
        template,
        {**context, "error": error, "tables": {}, "charts": []},
        status=400,
    )


def _period(request: HttpRequest, default: Period, name: str = "period") -> Period:
    text = request.GET.get(name, "")
    return Period.parse(text, field=name) if text else default


def _this_month() -> Period:
    latest = ClearingDay.objects.order_by("-date").values_list("date", flat=True).first()
    when = latest or timezone.localdate()
    return Period.month(when.year, when.month)


def _around(period: Period, href: Callable[[Period], str]) -> dict[str, Any]:
    """The links to the period before and after."""
    before, after = period.around()
    return {
        "before": before,
        "after": after,
        "before_href": href(before),
        "after_href": href(after),
    }


def _statement_links(period: Period) -> Callable[[Row], list[tuple[str, str]]]:
    """A positions row's statement, as PDF and Excel."""

    def links(row: Row) -> list[tuple[str, str]]:
        if row.ref is None:
            return []
        kind, counterparty = row.ref
        query = urlencode({"period": period.key, "counterparty": counterparty})
        return [
            *((fmt, reverse("clearing:statement", args=[kind, fmt]) + "?" + query)
              for fmt in ("pdf", "xlsx")),
            # Signed by the signature server, to hand to the counterparty (docs/exchange.md).
            (_("signed"), reverse("exchange:statement", args=[kind]) + "?" + query),
        ]  # fmt: skip

    return links


def _chart(name: str, spec: dict[str, Any], title: str) -> dict[str, Any]:
    return {"id": f"chart-{name}", "spec": spec, "title": title}


# -- the days --------------------------------------------------------------------------


@role_required(*READERS)
def days(request: HttpRequest) -> HttpResponse:
    """The clearing days of a month with their status and last run."""
    try:
        month = _period(request, _this_month(), "month")
        if not month.monthly:
            month = Period.month(month.first.year, month.first.month)
    except FilterError as error:
        return _refused(request, "clearing/days.html", error, {})
    table = days_report.days(month)
    for row in table.rows:
        if row.ref is not None:
            row.href = reverse("clearing:day", args=[row.ref])
    chart = _chart("days", figures.daily_cleared(month), _("The month's days"))
    context = {
        "period": month,
        "charts": [chart],
        **_around(month, lambda p: "?" + urlencode({"month": p.key})),
    }
    return _page(
        request, "clearing/days.html", context, [table], filename=f"clearing-days-{month.key}"
    )


@role_required(*READERS)
def day(request: HttpRequest, date: str) -> HttpResponse:
    """A clearing day: its status and runs, totals, positions, owner shares,
    held disputes, statements, each total linked to its transactions."""
    try:
        period = Period.parse(date)
    except FilterError:
        raise Http404 from None
    found = ClearingDay.objects.filter(date=period.first).first()
    if found is None or period.monthly:
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    owners = figures.report(period, "owner")
    positions = figures.positions(period)
    shown = [
        days_report.totals(found),
        days_report.money(found),
        positions,
        owners,
        days_report.held_by_code(period),
        days_report.runs(found),
    ]
    charts = [_chart("owners", figures.chart_by(owners, "amount"), _("Cleared to each road owner"))]
    context = {
        "day": found,
        "period": period,
        "charts": charts,
        **_around(period, lambda p: reverse("clearing:day", args=[p.key])),
    }
    return _page(
        request,
        "clearing/day.html",
        context,
        shown,
        filename=f"clearing-{period.key}",
        actions={"positions": _statement_links(period)},
    )


# -- the reports -----------------------------------------------------------------------


@role_required(*READERS)
def report(request: HttpRequest) -> HttpResponse:
    """数据统计: a day's or a month's figures by one dimension, the issuance
    figures, and a chart (the rows' cleared amounts; a month's days)."""
    by = request.GET.get("by", "station")
    context: dict[str, Any] = {"by": by, "dimensions": list(figures.BY.items())}
    try:
        period = _period(request, _this_month())
        table = figures.report(period, by)
    except FilterError as error:
        return _refused(request, "clearing/report.html", error, context)
    value = "amount" if by == "owner" else "cleared"
    charts = [_chart("report", figures.chart_by(table, value), str(table.title))]
    if period.monthly:
        charts.append(_chart("days", figures.daily_cleared(period), _("The month's days")))
    context |= {
        "period": period,
        "charts": charts,
        **_around(period, lambda p: "?" + urlencode({"period": p.key, "by": by})),
    }
    shown = [table, figures.issuance_table(period)]
    return _page(
        request, "clearing/report.html", context, shown, filename=f"report-{by}-{period.key}"
    )


@role_required(*READERS)
def payments(request: HttpRequest) -> HttpResponse:
    """交款信息统计表: lane payments per station, shift and collector."""
    station = request.GET.get("station", "").strip()[:20]
    context: dict[str, Any] = {"station": station}
    try:
        period = _period(request, Period.day(_this_month().first))
        if not request.GET.get("period"):
            latest = ClearingDay.objects.order_by("-date").values_list("date", flat=True).first()
            period = Period.day(latest or timezone.localdate())
    except FilterError as error:
        return _refused(request, "clearing/payments.html", error, context)
    table = figures.lane_payments(period, station)
    context |= {
        "period": period,
        "charts": [],
        **_around(period, lambda p: "?" + urlencode({"period": p.key, "station": station})),
    }
    return _page(
        request, "clearing/payments.html", context, [table], filename=f"payments-{period.key}"
    )


# -- the drill-down --------------------------------------------------------------------


def _transactions_table(
    listed: Iterable[drill.Listed], *, lane: bool, reveal: bool, title: str
) -> Table:
    table = Table("transactions", title, drill.transaction_columns(lane))
    for chunk in listed:
        labels = drill.day_labels(chunk)
        for entry, txn in chunk.rows:
            row = drill.transaction_row(entry, txn, reveal=reveal, days=labels)
            if txn is not None:
                row.href = reverse("tolling:transaction", args=[txn.pk])
            table.rows.append(row)
    return table


def _after(request: HttpRequest) -> int:
    text = request.GET.get("after", "")
    if text and not text.isdigit():
        raise FilterError("after", _("Give a whole number."))
    return int(text or 0)


@role_required(*READERS)
def transactions(request: HttpRequest) -> HttpResponse:
    """The transactions behind a total, a page at a time (`after`: the key the
    previous page ended on). `?format=xlsx` exports them all, up to a limit."""
    reveal = may_see_personal_data(request.user)
    lane = request.GET.get("source") == "lane"
    try:
        query: drill.Drill | drill.LaneDrill = (
            drill.LaneDrill.parse(request.GET) if lane else drill.Drill.parse(request.GET)
        )
        after = _after(request)
    except FilterError as error:
        return _refused(request, "clearing/transactions.html", error, {})
    title = " · ".join(query.describe())
    if request.GET.get("format") == "xlsx":
        table = _transactions_table(drill.every_page(query), lane=lane, reveal=reveal, title=title)
        if len(table.rows) >= drill.EXPORT_LIMIT:
            table.note = _("The first %(count)s rows: narrow the filter for the rest.") % {
                "count": f"{drill.EXPORT_LIMIT:,}"
            }
        heading = [f"{_('Made at')}: {tables.local_time(timezone.now())}"]
        table.title = _("Transactions")
        return _download(tables.workbook([table], [title, *heading]), "transactions.xlsx")
    listed = drill.page(query, after, drill.PAGE_SIZE)
    table = _transactions_table([listed], lane=lane, reveal=reveal, title=title)
    following = ""
    if listed.next_after is not None:
        params = request.GET.copy()
        params["after"] = str(listed.next_after)
        following = "?" + params.urlencode()
    first = request.GET.copy()
    first.pop("after", None)
    context = {
        "query": query,
        "words": query.describe(),
        "next": following,
        "first": "?" + first.urlencode() if after else "",
        "masked": not reveal,
        "charts": [],
    }
    return _page(request, "clearing/transactions.html", context, [table], filename="transactions")


@role_required(*READERS)
def disputes(request: HttpRequest) -> HttpResponse:
    """The entries held (遗留) now, with their transaction and §6.2 code."""
    reveal = may_see_personal_data(request.user)
    try:
        code = tables.number(request.GET, "code", 1, 999)
        after = _after(request)
    except FilterError as error:
        return _refused(request, "clearing/disputes.html", error, {})
    summary = days_report.held_by_code()
    for row in summary.rows:
        if row.ref is not None:
            row.href = "?" + urlencode({"code": row.ref})
    listed = drill.held_page(code, after, drill.PAGE_SIZE)
    table = _transactions_table(
        [listed], lane=False, reveal=reveal, title=_("Disputes held (遗留)")
    )
    table.name = "held"
    following = ""
    if listed.next_after is not None:
        params = request.GET.copy()
        params["after"] = str(listed.next_after)
        following = "?" + params.urlencode()
    context: dict[str, Any] = {
        "code": code,
        "next": following,
        "masked": not reveal,
        "charts": [],
    }
    return _page(
        request, "clearing/disputes.html", context, [summary, table], filename="disputes-held"
    )


# -- the statements --------------------------------------------------------------------


@role_required(*READERS)
def statement_list(request: HttpRequest) -> HttpResponse:
    """The period's counterparties with their positions and statements."""
    try:
        period = _period(request, _this_month())
    except FilterError as error:
        return _refused(request, "clearing/statements.html", error, {})
    table = figures.positions(period)
    context = {
        "period": period,
        "charts": [],
        **_around(period, lambda p: "?" + urlencode({"period": p.key})),
    }
    return _page(
        request,
        "clearing/statements.html",
        context,
        [table],
        filename=f"positions-{period.key}",
        actions={"positions": _statement_links(period)},
    )


@role_required(*READERS)
def statement(request: HttpRequest, kind: str, fmt: str) -> HttpResponse:
    """A counterparty's statement for a day or a month, as PDF or Excel."""
    if fmt not in ("pdf", "xlsx"):
        raise Http404
    try:
        period = Period.parse(request.GET.get("period", ""))
    except FilterError as error:
        return HttpResponse(
            f"{error.field}: {error.message}", status=400, content_type="text/plain; charset=utf-8"
        )
    try:
        found = statements.build(period, kind, request.GET.get("counterparty", "")[:60])
    except statements.NoStatement:
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    if fmt == "pdf":
        response = _download(statements.pdf(found), f"{found.filename}.pdf", "application/pdf")
        response["Content-Disposition"] = f'inline; filename="{found.filename}.pdf"'
        return response
    return _download(statements.xlsx(found), f"{found.filename}.xlsx")
