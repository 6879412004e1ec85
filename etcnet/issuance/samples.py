"""Sample data for the demo and the tests: valid, synthetic, never real people.

Plain functions with keyword defaults (the factories of the test suite and the
demo loader share them), so a test states only what matters to it.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw

from etcnet.core.validators import resident_id_check_char, uscc_check_char, vin_check_digit


def resident_id(region: str = "610102", birth: str = "19900101", seq: str = "123") -> str:
    body = region + birth + seq
    return body + resident_id_check_char(body)


def uscc(body: str = "91610000MA6TG0") -> str:
    body = (body + "0000")[:17]
    return body + uscc_check_char(body)


def vin(wmi_vds: str = "LSVAM4187C2", serial: str = "184127") -> str:
    """A VIN with a correct check digit at position 9."""
    draft = wmi_vds[:8] + "0" + wmi_vds[8:] + serial
    draft = draft[:17]
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def personal_customer(**overrides: Any) -> dict[str, Any]:
    data = {
        "customer_type": "1",
        "name": "张三",
        "id_type": "101",
        "id_number": resident_id(),
        "address": "陕西省西安市碑林区南大街1号",
    }
    data.update(overrides)
    return data


def organization_customer(**overrides: Any) -> dict[str, Any]:
    data = {
        "customer_type": "2",
        "name": "西安示例物流有限公司",
        "id_type": "201",
        "id_number": uscc(),
        "address": "陕西省西安市未央区凤城八路100号",
        "department": "运输部",
        "agent_name": "李四",
        "agent_id_type": "101",
        "agent_id_number": resident_id(birth="19850615", seq="246"),
    }
    data.update(overrides)
    return data


def passenger_car(**overrides: Any) -> dict[str, Any]:
    """A class 1 passenger car (5 seats, 4.7 m, 2 axles)."""
    data = {
        "plate": "陕A12345",
        "plate_color": "0",
        "category": "passenger",
        "toll_class": "1",
        "user_type": "0",
        "use_nature": "A",
        "brand_model": "大众牌SVW71810KJ",
        "vin": vin(),
        "vin_imported": False,
        "engine_no": "DJS123456",
        "register_date": "2021-03-15",
        "issue_date": "2021-03-15",
        "owner_name": "张三",
        "seats": "5",
        "length_mm": "4753",
        "width_mm": "1800",
        "height_mm": "1462",
        "total_mass_kg": "1920",
        "curb_mass_kg": "1470",
        "approved_load_kg": "",
        "axles": "2",
        "wheels": "4",
        "contact_name": "张三",
        "contact_phone": "13800138000",
    }
    data.update(overrides)
    return data


def two_axle_truck(**overrides: Any) -> dict[str, Any]:
    """A class 2 truck (2 axles, 7.2 m, 12 t)."""
    return passenger_car(
        **{
            "plate": "陕A6D789",
            "plate_color": "1",
            "category": "truck",
            "toll_class": "12",
            "use_nature": "F",
            "brand_model": "解放牌CA1120",
            "vin": vin("LFWADRJF1B1", "030001"),
            "engine_no": "CA4DF312345",
            "owner_name": "西安示例物流有限公司",
            "seats": "3",
            "length_mm": "7200",
            "width_mm": "2300",
            "height_mm": "2950",
            "total_mass_kg": "12000",
            "curb_mass_kg": "5200",
            "approved_load_kg": "6605",
            "wheels": "6",
            "contact_name": "李四",
            **overrides,
        }
    )


def photo_bytes(
    text: str = "etcnet",
    *,
    size: tuple[int, int] = (640, 400),
    fmt: str = "JPEG",
    exif: bool = False,
) -> bytes:
    """A small photo; with `exif=True` it carries a GPS-bearing EXIF block."""
    image = Image.new("RGB", size, (40, 90, 160))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, size[0] - 20, size[1] - 20), outline=(255, 255, 255), width=4)
    draw.text((40, 40), text, fill=(255, 255, 255))
    out = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "SampleCam"  # Make
        data[0x8825] = {1: "N", 2: (34.0, 15.0, 0.0)}  # GPS IFD
        kwargs["exif"] = data
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()
