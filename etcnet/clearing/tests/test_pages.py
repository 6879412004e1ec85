"""The clearing pages through the Django test client over two days closed by the
real run (the scenario of test_reports): who may see them, what they show in
Chinese (English in the English locale), the drill-down from a total to its
transactions, the Excel downloads opened with openpyxl and the statements as
PDF and Excel."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from openpyxl import load_workbook

from conftest import make_user
from etcnet.clearing import exchange, run, simulated
from etcnet.clearing.models import ClearingDay
from etcnet.clearing.reports import drill
from etcnet.clearing.tests.store import VERSION, exit_, local, route, tariff
from etcnet.clearing.tests.test_reports import DAY, build_days
from etcnet.tolling.models import Terminal
from etcnet.tolling.tests.test_partitions import lane_terminal  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

PAGES = [
    "/clearing/",
    "/clearing/days/2026-11-10/",
    "/clearing/reports/?period=2026-11-10",
    "/clearing/payments/?period=2026-11-10",
    "/clearing/transactions/?period=2026-11-10",
    "/clearing/disputes/",
    "/clearing/statements/?period=2026-11",
    "/clearing/statements/owner.pdf?period=2026-11&counterparty=610001",
]


@pytest.fixture
def two_days(lane_terminal: Terminal) -> dict[str, Any]:  # noqa: F811  (the fixture imported above)
    return build_days(lane_terminal)


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def row_of(page: str, key: str, table: str = "") -> str:
    """The HTML of the table row whose first cell reads `key` (in `table`)."""
    if table:
        page = page.split(f'data-table="{table}"', 1)[1].split("</section>", 1)[0]
    found = re.search(rf'<tr data-row="{re.escape(key)}"[^>]*>(.*?)</tr>', page, re.S)
    assert found, f"no row {key!r}"
    return found.group(1)


def cell_of(row: str, column: str) -> tuple[str, str]:
    """(text, link) of a row's cell in `column`."""
    found = re.search(rf'data-col="{column}"[^>]*>(.*?)</td>', row, re.S)
    assert found, f"no column {column!r}"
    inner = found.group(1)
    link = re.search(r'href="([^"]+)"', inner)
    text = re.sub(r"<[^>]+>", "", inner).strip()
    return text, html.unescape(link.group(1)) if link else ""


def drilled(client: Client, link: str) -> list[str]:
    """The transactions a drill-down lists, following its pages: their tolling links."""
    found: list[str] = []
    while link:
        page = client.get(link).content.decode()
        found += re.findall(r'<a href="/tolling/(\d+)/">', page)
        following = re.search(r'<a href="([^"]+)" data-testid="next-page">', page)
        link = "/clearing/transactions/" + html.unescape(following.group(1)) if following else ""
    return found


def money(value: Any) -> Decimal:
    """A workbook's number (a float, as Excel keeps it) as exact yuan."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def workbook(response: Any) -> Any:
    assert response.status_code == 200
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response["Content-Disposition"].startswith("attachment;")
    return load_workbook(io.BytesIO(response.content))


def test_anonymous_users_go_to_the_login_page_and_other_roles_get_403(db):
    collector = make_user("carl", "toll_collector")
    master = make_user("sam", "station_master")
    for path in PAGES:
        anonymous = Client().get(path)
        assert anonymous.status_code == 302, path
        assert anonymous["Location"].startswith("/login/?next="), path
        for user in (collector, master):
            assert client_for(user).get(path).status_code == 403, path


def test_operators_and_auditors_see_the_link_and_the_pages(two_days, operator, auditor):
    for user in (operator, auditor):
        client = client_for(user)
        assert '<a href="/clearing/">清分结算</a>' in client.get("/tolling/").content.decode()
        for path in PAGES:
            assert client.get(path).status_code == 200, path
    master = client_for(make_user("sam", "station_master"))
    assert 'href="/clearing/"' not in master.get("/tolling/").content.decode()


def test_the_days_page_lists_each_day_with_its_run(two_days, operator):
    page = client_for(operator).get("/clearing/?month=2026-11").content.decode()

    row = row_of(page, "2026-11-10")
    assert cell_of(row, "status")[0] == "已关闭"
    assert cell_of(row, "records")[0] == "7"
    assert cell_of(row, "payable")[0] == "146.74"
    assert cell_of(row, "run")[0].startswith("成功 ")
    assert cell_of(row, "date")[1] == "/clearing/days/2026-11-10/"
    assert cell_of(row_of(page, "合计"), "payable")[0] == "165.98"
    assert 'data-chart="chart-days"' in page
    assert "/static/clearing/vendor/chart.umd.min.js" in page


def test_a_day_page_shows_its_totals_positions_shares_and_run_log(two_days, operator):
    client = client_for(operator)
    page = client.get("/clearing/days/2026-11-10/").content.decode()

    assert "已关闭" in page
    assert cell_of(row_of(page, "已清分"), "count")[0] == "4"
    assert cell_of(row_of(page, "甲路公司 610001"), "net")[0] == "-58.50"
    assert cell_of(row_of(page, "杨村 S1201006"), "net")[0] == "25.00"
    assert cell_of(row_of(page, "丙路公司 610003", "report-owner"), "amount")[0] == "39.49"
    assert cell_of(row_of(page, "1 验证未通过（TAC错误）"), "payable")[0] == "71.49"
    runs = re.findall(r'<tr data-row="[^"]*">(.*?)</tr>', page.split('data-table="runs"')[1], re.S)
    assert [cell_of(r, "status")[0] for r in runs] == ["成功"]
    assert "records 7" in cell_of(runs[0], "counts")[0]
    assert 'data-chart="chart-owners"' in page


def test_every_total_of_a_day_drills_down_to_its_transactions(two_days, operator):
    client = client_for(operator)
    t = two_days
    day = client.get("/clearing/days/2026-11-10/").content.decode()
    report = client.get("/clearing/reports/?period=2026-11-10&by=station").content.decode()

    cleared = cell_of(row_of(day, "已清分"), "count")[1]
    assert drilled(client, cleared) == [
        str(t[k].pk) for k in ("own", "cash", "cash_yangcun", "alipay")
    ]
    held = cell_of(row_of(day, "6 交易数据域错"), "trips")[1]
    assert drilled(client, held) == [str(t["unpriced"].pk)]
    station = cell_of(row_of(report, "小孙庄 S1201005"), "trips")[1]
    assert drilled(client, station) == [
        str(t[k].pk) for k in ("own", "foreign", "cash", "unpriced", "tac")
    ]
    sent = cell_of(row_of(report, "小孙庄 S1201005"), "sent")[1]
    assert drilled(client, sent) == [str(t["foreign"].pk)]


def test_the_drill_down_pages_by_key(two_days, operator, monkeypatch):
    monkeypatch.setattr(drill, "PAGE_SIZE", 2)

    found = drilled(client_for(operator), "/clearing/transactions/?period=2026-11-10&what=all")

    assert len(found) == 7
    assert found == sorted(found, key=int)


def test_the_report_by_station_in_chinese_with_its_excel_export(two_days, auditor):
    client = client_for(auditor)
    page = client.get("/clearing/reports/?period=2026-11-10&by=station").content.decode()

    row = row_of(page, "小孙庄 S1201005")
    columns = ("trips", "fee", "discount", "payable", "cleared", "held_trips", "held",
               "sent_trips", "sent")  # fmt: skip
    shown = {c: cell_of(row, c)[0] for c in columns}
    assert shown == {
        "trips": "5", "fee": "235.50", "discount": "10.27", "payable": "225.23",
        "cleared": "101.49", "held_trips": "2", "held": "99.99", "sent_trips": "1",
        "sent": "23.75",
    }  # fmt: skip
    assert "按收费站统计" in page
    assert cell_of(row_of(page, "预收通行费（万元）"), "value")[0] == "0.00"

    book = workbook(
        client.get(
            "/clearing/reports/?period=2026-11-10&by=station&format=xlsx&table=report-station"
        )
    )
    sheet = book.active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "按收费站统计"
    header = rows[2]
    assert header[:5] == ("收费站", "交易笔数", "通行费", "优惠金额", "实收")
    data = {r[0]: r for r in rows[3:]}
    assert data["小孙庄 S1201005"][1] == 5
    assert [money(v) for v in data["小孙庄 S1201005"][2:6]] == [
        Decimal("235.50"), Decimal("10.27"), Decimal("225.23"), Decimal("101.49"),
    ]  # fmt: skip
    assert money(data["合计"][4]) == Decimal("270.48")


def test_every_table_of_a_page_exports_to_excel(two_days, operator):
    client = client_for(operator)

    book = workbook(client.get("/clearing/days/2026-11-10/?format=xlsx"))
    assert book.sheetnames == [
        "当日合计", "当日金额", "结算头寸", "按路段业主统计", "遗留（按 §6.2 代码）", "运行日志",
    ]  # fmt: skip
    positions = {r[0]: r for r in book["结算头寸"].iter_rows(min_row=4, values_only=True)}
    assert [money(v) for v in positions["储值卡资金"][2:]] == [
        Decimal("71.49"), Decimal("0.00"), Decimal("71.49"),
    ]  # fmt: skip
    assert positions["合计"][4] == 0
    lane = workbook(client.get("/clearing/payments/?period=2026-11-10&format=xlsx"))
    cells = {r[0]: r for r in lane.active.iter_rows(min_row=4, values_only=True)}
    yangcun = cells["杨村 S1201006"]
    assert yangcun[1:5] == ("2", "c002", 2, 1)
    assert [money(v) for v in (yangcun[5], yangcun[7], yangcun[8], yangcun[9])] == [
        Decimal("25.00"), Decimal("20.25"), Decimal("0.00"), Decimal("45.25"),
    ]  # fmt: skip


def test_a_drill_down_exports_every_row_masked_for_an_auditor(two_days, operator, auditor):
    query = "/clearing/transactions/?period=2026-11&what=taken&station=S1201005&format=xlsx"

    masked = workbook(client_for(auditor).get(query)).active
    plain = workbook(client_for(operator).get(query)).active

    rows = list(masked.iter_rows(min_row=5, values_only=True))
    assert len(rows) == 6  # the five of the 10th and the late one
    assert rows[0][3] == "6101************0001"
    assert rows[0][4] == "陕A****5"
    assert money(rows[0][9]) == Decimal("71.49")
    own = next(plain.iter_rows(min_row=5, values_only=True))
    assert (own[3], own[4]) == ("61010000000000000001", "陕A12345")


def test_the_disputes_held_with_their_codes_masked_for_an_auditor(two_days, operator, auditor):
    page = client_for(auditor).get("/clearing/disputes/").content.decode()

    assert cell_of(row_of(page, "1 验证未通过（TAC错误）"), "trips")[0] == "1"
    assert cell_of(row_of(page, "6 交易数据域错"), "payable")[0] == "28.50"
    assert "6101************0005" in page
    assert "61010000000000000005" not in page
    only = client_for(operator).get("/clearing/disputes/?code=6").content.decode()
    assert "61010000000000000004" in only
    assert "61010000000000000005" not in only.split('data-table="held"')[1]


def test_a_statement_as_pdf_and_as_excel(two_days, operator):
    client = client_for(operator)
    listing = client.get("/clearing/statements/?period=2026-11").content.decode()
    pdf_link = re.search(
        r'href="([^"]+)" data-testid="statement-pdf"', row_of(listing, "丙路公司 610003")
    )
    assert pdf_link

    pdf = client.get(html.unescape(pdf_link.group(1)))

    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert b"610003" in pdf.content
    assert b"-58.73" in pdf.content  # the month's net: 39.49 + 19.24 owed to it
    book = workbook(
        client.get("/clearing/statements/owner.xlsx?period=2026-11&counterparty=610003")
    )
    assert book.sheetnames == ["按日结算头寸", "按出口收费站的拆分"]
    days = list(book["按日结算头寸"].iter_rows(values_only=True))
    assert days[1][0] == "对账单 丙路公司 610003 2026-11"
    assert days[2][0] == "结算对象: 丙路公司 610003"
    by_day = {r[0]: [money(v) for v in r[1:]] for r in days[8:]}
    assert by_day == {
        "2026-11-10": [Decimal("0.00"), Decimal("39.49"), Decimal("-39.49")],
        "2026-11-11": [Decimal("0.00"), Decimal("19.24"), Decimal("-19.24")],
        "合计": [Decimal("0.00"), Decimal("58.73"), Decimal("-58.73")],
    }


def test_statements_of_the_national_center_a_station_and_the_purses(two_days, operator):
    client = client_for(operator)
    cash = client.get(
        "/clearing/statements/station_cash.pdf?period=2026-11-10&counterparty=S1201005"
    )
    assert cash.content.startswith(b"%PDF")
    assert b"S1201005" in cash.content
    purses = workbook(client.get("/clearing/statements/purses.xlsx?period=2026-11"))
    details = list(purses["已清分交易"].iter_rows(values_only=True))
    assert details[-1][3] == 2
    assert [money(v) for v in details[-1][4:]] == [
        Decimal("95.50"), Decimal("4.77"), Decimal("90.73"),
    ]  # fmt: skip
    missing = client.get("/clearing/statements/national_center.pdf?period=2026-11-10")
    assert missing.status_code == 404  # nothing of other issuers was cleared that day
    assert client.get("/clearing/statements/owner.doc?period=2026-11").status_code == 404


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/clearing/reports/?period=2026-13", "period"),
        ("/clearing/reports/?period=2026-11&by=plate", "by"),
        ("/clearing/transactions/?period=2026-11-10&what=everything", "what"),
        ("/clearing/transactions/?period=2026-11-10&after=x", "after"),
        ("/clearing/transactions/?source=lane&period=2026-11-10&pay=card", "pay"),
        ("/clearing/payments/?period=11/10", "period"),
        ("/clearing/disputes/?code=abc", "code"),
        ("/clearing/?month=2026-99", "month"),
    ],
)
def test_a_bad_filter_answers_400_naming_the_field(two_days, operator, path, field):
    client = client_for(operator)
    refused = client.get(path)

    assert refused.status_code == 400
    page = refused.content.decode()
    assert f'data-field="{field}"' in page
    # Nothing was exported, and the next good request still goes through.
    assert client.get(path + "&format=xlsx").status_code == 400
    assert client.get("/clearing/reports/?period=2026-11").status_code == 200


def test_the_pages_speak_english_in_the_english_locale(two_days, operator):
    client = client_for(operator)
    page = client.get("/clearing/days/2026-11-10/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Clearing day" in page
    assert cell_of(row_of(page, "Cleared"), "count")[0] == "4"
    assert "Closed" in page
    # The statement stays in Chinese: the counterparty files it.
    book = workbook(
        client.get(
            "/clearing/statements/owner.xlsx?period=2026-11&counterparty=610001",
            HTTP_ACCEPT_LANGUAGE="en",
        )
    )
    assert book.sheetnames[0] == "按日结算头寸"


def test_a_day_not_run_is_not_found(two_days, operator):
    client = client_for(operator)
    assert client.get("/clearing/days/2026-11-12/").status_code == 404
    assert client.get("/clearing/days/soon/").status_code == 404
    assert ClearingDay.objects.filter(date=DAY).exists()


def test_an_open_road_exit_and_a_record_carried_in_have_their_drill_downs(
    lane_terminal,  # noqa: F811
    operator,
    tmp_path,
):
    first, second = dt.date(2026, 11, 10), dt.date(2026, 11, 11)
    tariff(VERSION, {"G7": ("D", 1000), "G8": ("E", 500)},
           effective_at=local(first, 0) - dt.timedelta(days=1), to="S1201005")  # fmt: skip
    open_exit = exit_(lane_terminal, 1, local(first, 8), method="open", intervals=[],
                      fee_fen=500, discount_fen=25, payable_fen=475, amount_fen=475)  # fmt: skip
    foreign = exit_(lane_terminal, 2, local(first, 9), card_no="32010000000000000002",
                    card_network="3201", intervals=route("G8"), fee_fen=500, discount_fen=25,
                    payable_fen=475, amount_fen=475, tac="1A2B3C4D", trans_type=9,
                    terminal_trans_seq=7, plate="苏A12345")  # fmt: skip
    run.run_day(first)
    (package,) = exchange.export_day(first, tmp_path)
    answer = tmp_path / "answer.xml"
    answer.write_bytes(simulated.answer(package.read_bytes(), message_id=1))
    exchange.import_file(answer)
    run.run_day(second)
    client = client_for(operator)

    # The open-road exit is E's: its fee went to the road that ends at the station.
    assert drilled(client, "/clearing/transactions/?period=2026-11-10&what=cleared&owner=E") == [
        str(open_exit.pk)
    ]
    assert drilled(client, "/clearing/transactions/?period=2026-11-10&what=cleared&owner=D") == []
    day = client.get("/clearing/days/2026-11-11/").content.decode()
    carried = cell_of(row_of(day, "由前日转入"), "count")[1]
    assert drilled(client, carried) == [str(foreign.pk)]
    # The national center owes what it accepted: the same record behind its position.
    owed = cell_of(row_of(day, "部中心", "positions"), "net")[1]
    assert drilled(client, owed) == [str(foreign.pk)]


def test_each_counterparty_s_position_drills_down_to_its_cleared_transactions(
    lane_terminal,  # noqa: F811
    operator,
):
    day = dt.date(2026, 11, 10)
    tariff(VERSION, {"G1": ("A", 3000), "G2": ("B", 2500)},
           effective_at=local(day, 0) - dt.timedelta(days=1))  # fmt: skip
    own = exit_(lane_terminal, 1, local(day, 8), intervals=route("G1", "G2"), fee_fen=5500,
                discount_fen=275, payable_fen=5225, amount_fen=5225)  # fmt: skip
    cash = exit_(lane_terminal, 2, local(day, 9), payment_type=1, card_no="", card_network="",
                 card_trans_no=None, intervals=route("G1"), fee_fen=3000, discount_fen=0,
                 payable_fen=3000, amount_fen=0)  # fmt: skip
    alipay = exit_(lane_terminal, 3, local(day, 10), payment_type=10, card_no="",
                   card_network="", card_trans_no=None, intervals=route("G2"), fee_fen=2500,
                   discount_fen=0, payable_fen=2500, amount_fen=0)  # fmt: skip
    run.run_day(day)
    client = client_for(operator)
    page = client.get("/clearing/days/2026-11-10/").content.decode()

    def behind(name: str) -> list[str]:
        return drilled(client, cell_of(row_of(page, name, "positions"), "net")[1])

    assert behind("A") == [str(own.pk), str(cash.pk)]
    assert behind("B") == [str(own.pk), str(alipay.pk)]
    assert behind("储值卡资金") == [str(own.pk)]
    assert behind("小孙庄 S1201005") == [str(cash.pk)]
    assert behind("支付宝 (10)") == [str(alipay.pk)]
