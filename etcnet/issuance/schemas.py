"""API shapes for issuance. Inputs are loosely typed on purpose: the step parsers
in `domain` give the field-level errors, the same as on the pages."""

import datetime as dt

from ninja import Schema

Loose = str | int | None


class StartIn(Schema):
    phone: str


class CodeIn(Schema):
    code: str


class CustomerIn(Schema):
    customer_type: Loose = None
    name: Loose = None
    id_type: Loose = None
    id_number: Loose = None
    address: Loose = None
    department: Loose = None
    agent_name: Loose = None
    agent_id_type: Loose = None
    agent_id_number: Loose = None


class VehicleIn(Schema):
    plate: Loose = None
    plate_color: Loose = None
    category: Loose = None
    toll_class: Loose = None
    user_type: Loose = None
    use_nature: Loose = None
    brand_model: Loose = None
    vin: Loose = None
    vin_imported: bool | str | None = None
    engine_no: Loose = None
    register_date: Loose = None
    issue_date: Loose = None
    owner_name: Loose = None
    seats: Loose = None
    length_mm: Loose = None
    width_mm: Loose = None
    height_mm: Loose = None
    total_mass_kg: Loose = None
    curb_mass_kg: Loose = None
    approved_load_kg: Loose = None
    axles: Loose = None
    wheels: Loose = None
    contact_name: Loose = None
    contact_phone: Loose = None


class IssueOut(Schema):
    field: str
    code: str
    message: str


class DocumentOut(Schema):
    kind: str
    label: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    sha256: str
    uploaded_at: dt.datetime
    url: str
    thumbnail_url: str


class ApplicationOut(Schema):
    id: int
    number: str
    status: str
    status_label: str
    outlet: str
    phone: str
    phone_verified: bool
    steps: dict[str, bool]
    existing_customer_id: int | None
    customer: dict[str, str | int | None]
    vehicle: dict[str, str | int | bool | None]
    documents: list[DocumentOut]
    refusal_reasons: list[IssueOut]
    customer_id: int | None
    vehicle_id: int | None
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    decided_at: dt.datetime | None
    # An existing customer's values the application would change, [old, new],
    # waiting for a review at the customer's outlet (status `review`).
    customer_changes: dict[str, list[str]]


class ApplicationSummaryOut(Schema):
    id: int
    number: str
    status: str
    status_label: str
    outlet: str
    name: str
    id_number: str
    phone: str
    plate: str
    plate_color: int | None
    created_at: dt.datetime


class ReviewIn(Schema):
    accept: bool
    note: str = ""


class DecisionOut(Schema):
    approved: bool
    application: ApplicationOut
