"""Reference data for the demo and the tests: the Zhanjiang vehicle offices of
seed 004 (粤G) with their districts, and pool definitions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from etcnet.issuance import samples as issuance_samples
from etcnet.plates import services
from etcnet.plates.models import District, LocalRecord, NumberPool, VehicleOffice

OFFICES: list[dict[str, Any]] = [
    {
        "code": "440800",
        "name": "湛江市公安局交通警察支队车辆管理所",
        "city": "湛江市",
        "prefix": "粤G",
        "address": "湛江市赤坎区椹川大道北 88 号",
        "phone": "0759-3180000",
        "districts": [("440802", "赤坎区"), ("440803", "霞山区"), ("440811", "麻章区")],
    },
    {
        "code": "440881",
        "name": "廉江市公安局交通警察大队车辆管理所",
        "city": "湛江市",
        "prefix": "粤G",
        "address": "廉江市人民大道南 16 号",
        "phone": "0759-6630000",
        "districts": [("440881", "廉江市")],
    },
]

#: Pools of the demo: patterns as in docs/plates.md.
POOLS: list[dict[str, Any]] = [
    {
        "office": "440800",
        "kind": "ordinary",
        "title": "粤G 小型汽车号池（2026 年第 12 期）",
        "patterns": ["[A-H]####"],
        "reserved": [r"^(.)\1{4}$", r"8888"],
        "forbidden": [r"^[A-H]4444$", r"250$"],
        "announcement": (
            "本期投放粤G 小型汽车号牌 A0000–H9999 段（不含 I、O），供互联网自编和随机选号；"
            "五位相同、含 8888 的号码暂不投放；以 250 结尾及 4444 的号码不投放。"
        ),
    },
    {
        "office": "440800",
        "kind": "new_energy",
        "title": "粤G 小型新能源汽车号池（2026 年第 12 期）",
        "patterns": ["D[A-C]####", "F[A-B]####"],
        "reserved": [r"(\d)\1{3}$"],
        "forbidden": [],
        "announcement": "本期投放粤G 小型新能源汽车号牌 DA0000–DC9999、FA0000–FB9999 段。",
    },
]


def create_offices() -> list[VehicleOffice]:
    made = []
    for row in OFFICES:
        fields = {k: v for k, v in row.items() if k != "districts"}
        office, _ = VehicleOffice.objects.update_or_create(code=row["code"], defaults=fields)
        for code, name in row["districts"]:
            District.objects.update_or_create(office=office, code=code, defaults={"name": name})
        made.append(office)
    return made


#: A person the demo office knows (a vehicle registered here with this mobile
#: number), so a visitor can register as a vehicle owner too.
DEMO_OWNER = {
    "id_number": issuance_samples.resident_id("440802", "19850315", "501"),
    "phone": "13922220000",
}


def load_demo(*, operator: User, clerk: User) -> str:
    """Offices with the clerk assigned, the demo pools released, one local
    record; does nothing when pools exist. Returns what it made ("" if nothing)."""
    offices = create_offices()
    for office in offices:
        office.clerks.add(clerk)
    if NumberPool.objects.exists():
        return ""
    released = []
    for row in POOLS:
        pool = services.create_pool(
            office_code=row["office"],
            kind=row["kind"],
            title=row["title"],
            patterns=row["patterns"],
            reserved=row["reserved"],
            forbidden=row["forbidden"],
            announcement=row["announcement"],
            actor=operator,
        )
        released.append(services.release_pool(pool.pk, actor=operator))
    if not LocalRecord.objects.filter(id_number=DEMO_OWNER["id_number"]).exists():
        services.add_local_record(
            kind="vehicle", id_type=101, reference="粤G12345", actor=operator, **DEMO_OWNER
        )
    counts = ", ".join(f"{p.title}: {p.available_count}" for p in released)
    return f"{len(offices)} offices, pools released ({counts})"
