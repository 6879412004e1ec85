"""The printable registration form of a pre-selected number (机动车注册申请表，
互联网预选号牌), drawn with reportlab.

Chinese text uses the Adobe CID font STSong-Light, which PDF readers supply, so
no font file ships with etcnet. Numbers, the plate serial and the VIN are drawn
in Helvetica so they stay plain text in the (uncompressed) page stream.
"""

from __future__ import annotations

import io

from django.utils import translation
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from etcnet.core.codes import IdDocType
from etcnet.plates import selectors
from etcnet.plates.models import PlateKind, Selection

CJK = "STSong-Light"
LATIN = "Helvetica"
pdfmetrics.registerFont(UnicodeCIDFont(CJK))


def _runs(value: str) -> list[tuple[str, str]]:
    """``value`` as (font, text) runs: ASCII in Helvetica, the rest in the CJK font."""
    runs: list[tuple[str, str]] = []
    for char in value:
        font = LATIN if char.isascii() else CJK
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + char)
        else:
            runs.append((font, char))
    return runs


def _text(
    pdf: canvas.Canvas, x: float, y: float, value: str, size: float = 11, width: float = 0
) -> None:
    """Draws ``value`` switching fonts between runs; shrunk to fit ``width`` if given."""
    runs = _runs(value)
    if width:
        wide = sum(pdfmetrics.stringWidth(text, font, size) for font, text in runs)
        if wide > width:
            size = max(6.0, size * width / wide)
    for font, text in runs:
        pdf.setFont(font, size)
        pdf.drawString(x, y, text)
        x += pdfmetrics.stringWidth(text, font, size)


def registration_form(selection: Selection) -> bytes:
    """One A4 page: the number, the owner, the vehicle, where and by when to
    register, and what to bring. Always in Chinese: the office files it."""
    with translation.override("zh-hans"):
        return _draw(selection)


def _draw(selection: Selection) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=0)
    pdf.setTitle(f"机动车注册申请表 {selection.number}")
    width, height = A4
    left = 20 * mm
    y = height - 25 * mm
    _text(pdf, left, y, "机动车注册申请表（互联网预选号牌）", 18)
    y -= 10 * mm
    _text(pdf, left, y, f"表号 {selection.number}", 10)
    y -= 12 * mm

    office = selection.office
    account = selection.account
    confirmed = selectors.local_now(selection.confirmed_at) if selection.confirmed_at else None
    rows = [
        ("预选号牌号码", f"{selection.plate[:2]} {selection.plate[2:]}"),
        ("号牌种类", str(PlateKind(selection.kind).label)),
        ("选号方式", "自编选号" if selection.mode == "self" else "随机选号"),
        ("车辆识别代号", selection.vin),
        ("机动车所有人", selection.owner_name),
        ("身份证明", f"{IdDocType(account.id_type).label} {account.id_number}"),
        ("联系电话", selection.owner_phone),
        (
            "住所地址",
            selection.owner_address
            + (f"（{selection.postal_code}）" if selection.postal_code else ""),
        ),
        ("行政区划", selection.district.name),
        ("办理车管所", office.name),
        ("办理地址", office.address + (f"（电话 {office.phone}）" if office.phone else "")),
        ("预选时间", confirmed.strftime("%Y-%m-%d %H:%M") if confirmed else ""),
        (
            "办理期限",
            selection.deadline.strftime("%Y-%m-%d") + " 前（含当日）" if selection.deadline else "",
        ),
    ]
    pdf.setStrokeColor(colors.grey)
    row_height = 11 * mm
    label_width = 38 * mm
    table_width = width - 2 * left
    for label, value in rows:
        pdf.rect(left, y - row_height + 3 * mm, table_width, row_height)
        pdf.line(left + label_width, y - row_height + 3 * mm, left + label_width, y + 3 * mm)
        _text(pdf, left + 3 * mm, y - 4 * mm, label, 11)
        _text(
            pdf,
            left + label_width + 3 * mm,
            y - 4 * mm,
            value,
            12 if label == "预选号牌号码" else 11,
            width=table_width - label_width - 6 * mm,
        )
        y -= row_height
    y -= 8 * mm
    notes = [
        "1. 请在办理期限内携带本表、机动车整车出厂合格证（或进口凭证）、购车发票、",
        "   身份证明到上述车管所办理注册登记，并向受理人员说明已进行互联网选号。",
        "2. 购车发票上的名称须与互联网用户姓名一致，否则不予办理。",
        "3. 逾期未办理的，视为放弃，号码收回号池，用户列入黑名单。",
        "4. 本表可登录系统再次打印。",
    ]
    for line in notes:
        _text(pdf, left, y, line, 10)
        y -= 6 * mm
    y -= 10 * mm
    _text(pdf, left, y, "申请人签字：", 11)
    _text(pdf, left + 95 * mm, y, "受理人签字：", 11)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
