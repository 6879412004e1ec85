"""Issuance services through the real database: the seed-000 workflow, automatic
approval, and every refused input leaving no row, file or audit event behind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from conftest import (
    ALL_PHOTOS,
    committed,
    complete_application,
    last_code,
    make_user,
    photo,
    start,
    verified_application,
)
from etcnet.core.errors import Forbidden, InvalidInput
from etcnet.core.models import AuditEvent
from etcnet.core.sms import MemorySmsSender
from etcnet.issuance import samples, services
from etcnet.issuance.errors import NotEditable, PhoneNotVerified, StepIncomplete
from etcnet.issuance.models import (
    Application,
    ApplicationDocument,
    ApplicationStatus,
    Customer,
    PhoneVerification,
    Vehicle,
    VehicleStatus,
)

pytestmark = pytest.mark.django_db


def state() -> dict[str, Any]:
    """Everything a refused input must leave untouched."""
    return {
        "applications": list(
            Application.objects.order_by("pk").values_list("pk", "status", "updated_at")
        ),
        "customers": Customer.objects.count(),
        "vehicles": Vehicle.objects.count(),
        "documents": list(ApplicationDocument.objects.values_list("pk", "sha256")),
        "events": AuditEvent.objects.count(),
    }


def media_files(settings: Any) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def codes(error: InvalidInput) -> set[tuple[str, str]]:
    return {(issue.field, issue.code) for issue in error.issues}


# --- the happy path -------------------------------------------------------------


def test_personal_application_is_approved_and_registers_customer_and_vehicle(clerk):
    # given a completed application for a new personal customer
    application = complete_application(clerk)

    # when the clerk submits it
    decision = services.submit_application(application.pk, actor=clerk)

    # then automatic approval passes and the vehicle waits for issuance
    assert decision.approved is True
    application.refresh_from_db()
    assert application.status == ApplicationStatus.APPROVED
    customer = Customer.objects.get()
    assert (customer.name, customer.id_type, customer.id_number, customer.phone) == (
        "张三",
        101,
        samples.resident_id(),
        "13800138000",
    )
    vehicle = Vehicle.objects.get()
    assert (vehicle.plate, vehicle.plate_color, vehicle.toll_class, vehicle.status) == (
        "陕A12345",
        0,
        1,
        VehicleStatus.AWAITING_ISSUANCE,
    )
    assert vehicle.customer == customer
    assert application.customer == customer
    assert application.vehicle == vehicle
    actions = list(
        AuditEvent.objects.filter(
            subject_id=str(application.pk), subject_type="issuance.application"
        ).values_list("action", flat=True)
    )
    assert actions == [
        "issuance.application_started",
        "issuance.phone_verified",
        "issuance.customer_step_saved",
        "issuance.vehicle_step_saved",
        "issuance.document_uploaded",
        "issuance.document_uploaded",
        "issuance.document_uploaded",
        "issuance.document_uploaded",
        "issuance.application_approved",
    ]
    assert AuditEvent.objects.filter(action="issuance.customer_created").count() == 1
    assert AuditEvent.objects.filter(action="issuance.vehicle_registered").count() == 1
    event = AuditEvent.objects.get(action="issuance.application_approved")
    assert event.actor == clerk
    assert event.actor_name == "alice"


def test_existing_customer_is_recognised_by_document_number_and_gets_the_vehicle(clerk):
    # given an approved customer with one car
    first = complete_application(clerk)
    services.submit_application(first.pk, actor=clerk)

    # when a new application carries the same ID number with a new address
    # (a new name or phone waits for a review: test_customer_review.py)
    second = verified_application(clerk, phone="13800138000")
    services.save_customer(
        second.pk, data=samples.personal_customer(address="西安市新城区1号"), actor=clerk
    )
    second.refresh_from_db()
    assert second.existing_customer_id == Customer.objects.get().pk
    services.save_vehicle(
        second.pk,
        data=samples.passenger_car(
            plate="陕AD12345", plate_color="4", vin=samples.vin("LGXC16DF4N0")
        ),
        actor=clerk,
    )
    services.upload_documents(second.pk, files={k: photo(k) for k in ALL_PHOTOS}, actor=clerk)
    decision = services.submit_application(second.pk, actor=clerk)

    # then no second customer exists; the vehicle joins the first one, whose
    # address is updated and audited
    assert decision.approved
    customer = Customer.objects.get()
    assert customer.vehicles.count() == 2
    assert (customer.phone, customer.address) == ("13800138000", "西安市新城区1号")
    updated = AuditEvent.objects.get(action="issuance.customer_updated")
    assert updated.before == {"address": samples.personal_customer()["address"]}
    assert updated.after == {"address": "西安市新城区1号"}


def test_organization_needs_its_entrust_letter(clerk):
    # given an organization's truck application without the entrust letter
    application = complete_application(
        clerk, customer=samples.organization_customer(), vehicle=samples.two_axle_truck()
    )
    before = state()

    # when submitted, then the submission is refused for that photo and nothing changes
    with pytest.raises(InvalidInput) as caught:
        services.submit_application(application.pk, actor=clerk)
    assert caught.value.code == "documents_missing"
    assert codes(caught.value) == {("entrust_letter", "document_missing")}
    assert state() == before

    # and once the letter is uploaded, the submission is approved
    services.upload_documents(
        application.pk, files={"entrust_letter": photo("entrust_letter")}, actor=clerk
    )
    assert services.submit_application(application.pk, actor=clerk).approved
    customer = Customer.objects.get()
    assert (customer.customer_type, customer.id_type, customer.agent_name, customer.department) == (
        2,
        201,
        "李四",
        "运输部",
    )


def test_refusal_lists_every_reason(clerk, other_clerk):
    # given a truck declared class 1 (it is class 2) whose plate another
    # application gets approved for after this one saved its vehicle
    application = complete_application(clerk, vehicle=samples.two_axle_truck(toll_class="11"))
    rival = complete_application(
        other_clerk,
        customer=samples.personal_customer(name="赵六", id_number=samples.resident_id(seq="555")),
        vehicle=samples.two_axle_truck(vin=samples.vin(serial="700001")),
        phone="13911112222",
    )
    assert services.submit_application(rival.pk, actor=other_clerk).approved

    # when submitted
    decision = services.submit_application(application.pk, actor=clerk)

    # then it is refused with every reason, and nothing is registered for it
    assert not decision.approved
    application.refresh_from_db()
    assert application.status == ApplicationStatus.REFUSED
    assert [(r["field"], r["code"]) for r in application.refusal_reasons] == [
        ("toll_class", "class_inconsistent"),
        ("plate", "plate_already_bound"),
    ]
    assert application.refusal_reasons[0]["params"] == {"declared_class": 11, "expected_class": 12}
    assert Customer.objects.count() == 1
    assert Vehicle.objects.count() == 1
    refused = AuditEvent.objects.get(action="issuance.application_refused")
    assert refused.after == {"reasons": ["class_inconsistent", "plate_already_bound"]}


def test_refused_application_corrected_and_resubmitted_is_approved(clerk):
    application = complete_application(clerk, vehicle=samples.two_axle_truck(toll_class="11"))
    assert not services.submit_application(application.pk, actor=clerk).approved

    services.save_vehicle(application.pk, data=samples.two_axle_truck(), actor=clerk)

    assert services.submit_application(application.pk, actor=clerk).approved
    assert Vehicle.objects.get().toll_class == 12


def test_submitting_an_approved_application_again_changes_nothing(clerk):
    application = complete_application(clerk)
    services.submit_application(application.pk, actor=clerk)
    before = state()

    decision = services.submit_application(application.pk, actor=clerk)

    assert decision.approved
    assert state() == before


def test_approved_application_cannot_be_edited(clerk):
    application = complete_application(clerk)
    services.submit_application(application.pk, actor=clerk)
    before = state()

    with pytest.raises(NotEditable):
        services.save_vehicle(application.pk, data=samples.passenger_car(seats="7"), actor=clerk)
    with pytest.raises(NotEditable):
        services.upload_documents(application.pk, files={"id_photo": photo()}, actor=clerk)
    assert state() == before


def test_submit_before_steps_are_done_is_refused_and_changes_nothing(clerk):
    application = verified_application(clerk)
    before = state()

    with pytest.raises(StepIncomplete) as caught:
        services.submit_application(application.pk, actor=clerk)

    assert codes(caught.value) == {("customer", "step_incomplete"), ("vehicle", "step_incomplete")}
    assert state() == before


def test_plate_bound_to_a_live_vehicle_is_refused_at_the_vehicle_step(clerk, other_clerk):
    approved = complete_application(clerk)
    services.submit_application(approved.pk, actor=clerk)
    application = verified_application(other_clerk, phone="13911112222")
    services.save_customer(
        application.pk,
        data=samples.personal_customer(name="赵六", id_number=samples.resident_id(seq="555")),
        actor=other_clerk,
    )
    before = state()

    with pytest.raises(InvalidInput) as caught:
        services.save_vehicle(application.pk, data=samples.passenger_car(), actor=other_clerk)

    assert codes(caught.value) == {("plate", "plate_already_bound")}
    assert state() == before


def test_same_plate_other_colour_is_a_different_vehicle(clerk):
    approved = complete_application(clerk)
    services.submit_application(approved.pk, actor=clerk)
    application = complete_application(
        clerk,
        customer=samples.personal_customer(id_number=samples.resident_id(seq="777")),
        vehicle=samples.passenger_car(plate_color="1", vin=samples.vin(serial="900001")),
    )
    assert services.submit_application(application.pk, actor=clerk).approved


def test_race_for_one_plate_lets_only_one_application_through(clerk, other_clerk):
    # given two complete applications for the same plate, both saved before either submits
    first = complete_application(clerk)
    second = complete_application(
        other_clerk,
        customer=samples.personal_customer(name="赵六", id_number=samples.resident_id(seq="555")),
        phone="13911112222",
    )

    # when both are submitted
    results = [
        services.submit_application(first.pk, actor=clerk).approved,
        services.submit_application(second.pk, actor=other_clerk).approved,
    ]

    # then exactly one is approved; the other is refused for the binding
    assert results == [True, False]
    second.refresh_from_db()
    assert [r["code"] for r in second.refusal_reasons] == ["plate_already_bound"]
    assert Vehicle.objects.filter(plate="陕A12345").count() == 1


# --- phone verification -----------------------------------------------------------


def test_start_sends_a_code_to_the_phone_and_stores_only_its_digest(clerk):
    application = start(clerk, phone="138 0013 8000")

    assert application.phone == "13800138000"
    assert [m.phone for m in MemorySmsSender.outbox] == ["13800138000"]
    code = last_code()
    assert len(code) == 6
    assert code.isdigit()
    verification = PhoneVerification.objects.get()
    assert code not in verification.code_digest
    assert verification.expires_at - verification.sent_at == dt.timedelta(minutes=5)


def test_wrong_code_counts_a_try_and_changes_nothing_else(clerk):
    application = start(clerk)
    wrong = "000000" if last_code() != "000000" else "111111"
    before = state()

    with pytest.raises(InvalidInput) as caught:
        services.verify_phone(application.pk, code=wrong, actor=clerk)

    assert codes(caught.value) == {("code", "code_wrong")}
    assert caught.value.issues[0].params == {"left": 4}
    assert state() == before
    assert PhoneVerification.objects.get().attempts == 1
    application.refresh_from_db()
    assert application.phone_verified_at is None


def test_five_wrong_codes_exhaust_the_code(clerk):
    application = start(clerk)
    right = last_code()
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(InvalidInput):
            services.verify_phone(application.pk, code=wrong, actor=clerk)

    with pytest.raises(InvalidInput) as caught:
        services.verify_phone(application.pk, code=right, actor=clerk)

    assert codes(caught.value) == {("code", "code_tries_exhausted")}


def test_code_expires_after_five_minutes(clerk):
    with time_machine.travel(
        dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC), tick=False
    ) as traveller:
        application = start(clerk)
        code = last_code()
        traveller.shift(dt.timedelta(minutes=5, seconds=1))
        before = state()

        with pytest.raises(InvalidInput) as caught:
            services.verify_phone(application.pk, code=code, actor=clerk)

        assert codes(caught.value) == {("code", "code_expired")}
        assert state() == before


def test_new_code_replaces_the_old_one_after_the_resend_interval(clerk):
    with time_machine.travel(
        dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC), tick=False
    ) as traveller:
        application = start(clerk)
        old = last_code()
        with pytest.raises(Exception, match="Wait"):
            services.resend_phone_code(application.pk, actor=clerk)
        traveller.shift(dt.timedelta(seconds=61))
        with committed():
            services.resend_phone_code(application.pk, actor=clerk)
        new = last_code()
        if old != new:
            with pytest.raises(InvalidInput):
                services.verify_phone(application.pk, code=old, actor=clerk)
        services.verify_phone(application.pk, code=new, actor=clerk)
    application.refresh_from_db()
    assert application.phone_verified_at is not None


def test_steps_need_the_verified_phone(clerk):
    application = start(clerk)
    before = state()

    with pytest.raises(PhoneNotVerified):
        services.save_customer(application.pk, data=samples.personal_customer(), actor=clerk)

    assert state() == before


def test_bad_phone_is_refused_before_anything_is_written(clerk):
    before = state()
    with pytest.raises(InvalidInput) as caught:
        services.start_application(phone="12345", actor=clerk)
    assert codes(caught.value) == {("phone", "phone.format")}
    assert state() == before
    assert MemorySmsSender.outbox == []


# --- roles ------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["operator", "auditor", "collector"])
def test_only_issuance_clerks_take_applications(request, persona):
    user = request.getfixturevalue(persona)
    before = state()
    with pytest.raises(Forbidden):
        services.start_application(phone="13800138000", actor=user)
    assert state() == before


def test_clerk_without_outlet_cannot_start(db):
    loner = make_user("lone", "issuance_clerk")
    with pytest.raises(Forbidden) as caught:
        services.start_application(phone="13800138000", actor=loner)
    assert caught.value.code == "no_outlet"


# --- bad step input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"id_number": samples.resident_id()[:-1] + "0"}, {("id_number", "id.checksum")}),
        ({"id_number": "610102199002301234"}, {("id_number", "id.birth_date")}),
        ({"id_number": "610102900101123"}, {("id_number", "id.legacy_15")}),
        ({"name": ""}, {("name", "required")}),
        ({"name": "张 三"}, {("name", "bad_characters")}),
        ({"id_type": "201"}, {("id_type", "wrong_document_type")}),
        ({"customer_type": "7"}, {("customer_type", "invalid_choice")}),
    ],
)
def test_bad_customer_input_names_the_field_and_changes_nothing(clerk, overrides, expected):
    application = verified_application(clerk)
    before = state()

    with pytest.raises(InvalidInput) as caught:
        services.save_customer(
            application.pk, data=samples.personal_customer(**overrides), actor=clerk
        )

    assert expected <= codes(caught.value)
    assert state() == before


def test_bad_uscc_is_refused(clerk):
    application = verified_application(clerk)
    bad = samples.uscc()[:-1] + ("0" if samples.uscc()[-1] != "0" else "1")
    with pytest.raises(InvalidInput) as caught:
        services.save_customer(
            application.pk, data=samples.organization_customer(id_number=bad), actor=clerk
        )
    assert ("id_number", "uscc.checksum") in codes(caught.value)


def test_organization_without_agent_is_refused(clerk):
    application = verified_application(clerk)
    with pytest.raises(InvalidInput) as caught:
        services.save_customer(
            application.pk,
            data=samples.organization_customer(agent_name="", agent_id_number="", department=""),
            actor=clerk,
        )
    assert codes(caught.value) == {
        ("department", "required"),
        ("agent_name", "required"),
        ("agent_id_number", "required"),
    }


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"vin": samples.vin()[:8] + "0" + samples.vin()[9:]}, ("vin", "vin.check_digit")),
        ({"vin": "LSVAM4187O2184127"}, ("vin", "vin.forbidden_char")),
        ({"plate": "拉A12345"}, ("plate", "plate.province")),
        ({"plate": "陕AD12345", "plate_color": "0"}, ("plate", "plate.color_mismatch")),
        ({"seats": "five"}, ("seats", "not_a_number")),
        ({"axles": "0"}, ("axles", "out_of_range")),
        ({"register_date": "2099-01-01"}, ("register_date", "future_date")),
        ({"issue_date": "2020-01-01"}, ("issue_date", "before_registration")),
        ({"curb_mass_kg": "5000"}, ("curb_mass_kg", "curb_over_total")),
        ({"contact_phone": "2345678"}, ("contact_phone", "phone.format")),
        ({"engine_no": ""}, ("engine_no", "required")),
    ],
)
def test_bad_vehicle_input_names_the_field_and_changes_nothing(clerk, overrides, expected):
    application = verified_application(clerk)
    services.save_customer(application.pk, data=samples.personal_customer(), actor=clerk)
    before = state()

    with pytest.raises(InvalidInput) as caught:
        services.save_vehicle(application.pk, data=samples.passenger_car(**overrides), actor=clerk)

    assert expected in codes(caught.value)
    assert state() == before


def test_imported_vehicle_vin_without_check_digit_is_accepted_and_audited(clerk):
    application = verified_application(clerk)
    bad_check = samples.vin()[:8] + ("0" if samples.vin()[8] != "0" else "1") + samples.vin()[9:]

    services.save_vehicle(
        application.pk,
        data=samples.passenger_car(vin=bad_check, vin_imported=True),
        actor=clerk,
    )

    application.refresh_from_db()
    assert (application.vin, application.vin_imported) == (bad_check, True)
    waiver = AuditEvent.objects.get(action="issuance.vin_check_digit_waived")
    assert waiver.after == {"vin": bad_check, "imported": True}


def test_imported_flag_does_not_excuse_other_vin_faults(clerk):
    application = verified_application(clerk)
    with pytest.raises(InvalidInput) as caught:
        services.save_vehicle(
            application.pk,
            data=samples.passenger_car(vin="LSVAM4187O2184127", vin_imported=True),
            actor=clerk,
        )
    assert ("vin", "vin.forbidden_char") in codes(caught.value)


# --- documents --------------------------------------------------------------------


def test_uploaded_photo_is_reencoded_without_exif_and_has_a_thumbnail(clerk, settings):
    application = verified_application(clerk)
    upload = SimpleUploadedFile(
        "id.jpg", samples.photo_bytes(exif=True, size=(1200, 800)), "image/jpeg"
    )

    [document] = services.upload_documents(application.pk, files={"id_photo": upload}, actor=clerk)

    with Image.open(document.file.path) as stored:
        assert stored.format == "JPEG"
        assert dict(stored.getexif()) == {}
        assert stored.size == (1200, 800)
    with Image.open(document.thumbnail.path) as thumb:
        assert thumb.size == (320, 213)
    assert (document.content_type, document.width, document.height) == ("image/jpeg", 1200, 800)
    assert len(media_files(settings)) == 2


def test_replacing_a_photo_removes_the_old_files(clerk, settings):
    application = verified_application(clerk)
    services.upload_documents(application.pk, files={"id_photo": photo("one")}, actor=clerk)
    old = media_files(settings)

    with committed():
        services.upload_documents(application.pk, files={"id_photo": photo("two")}, actor=clerk)

    new = media_files(settings)
    assert len(new) == 2
    assert not set(old) & set(new)
    assert ApplicationDocument.objects.count() == 1


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("notes.txt", b"not an image at all", "file_not_image"),
        ("fake.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 100, "file_corrupt"),
        ("pic.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "file_not_image"),
        ("empty.jpg", b"", "file_empty"),
    ],
)
def test_non_image_upload_is_refused_and_stores_nothing(clerk, settings, name, content, code):
    application = verified_application(clerk)
    before = state()

    with pytest.raises(InvalidInput) as caught:
        services.upload_documents(
            application.pk,
            files={"id_photo": SimpleUploadedFile(name, content, "image/jpeg")},
            actor=clerk,
        )

    assert codes(caught.value) in ({("id_photo", code)}, {("id_photo", "file_not_image")})
    assert state() == before
    assert media_files(settings) == []


def test_oversize_upload_is_refused(clerk, settings):
    settings.ETCNET_UPLOAD_MAX_BYTES = 1000
    application = verified_application(clerk)
    before = state()

    with pytest.raises(InvalidInput) as caught:
        services.upload_documents(application.pk, files={"id_photo": photo()}, actor=clerk)

    assert codes(caught.value) == {("id_photo", "file_too_large")}
    assert state() == before
    assert media_files(settings) == []


def test_one_bad_file_in_a_batch_stores_none_of_them(clerk, settings):
    application = verified_application(clerk)
    before = state()

    with pytest.raises(InvalidInput):
        services.upload_documents(
            application.pk,
            files={
                "licence_main": photo("main"),
                "licence_supplement": SimpleUploadedFile("x.pdf", b"%PDF-1.4", "application/pdf"),
            },
            actor=clerk,
        )

    assert state() == before
    assert media_files(settings) == []


@pytest.mark.parametrize("check_char", ["0", "1", "7", "X"])
def test_check_character_messages_show_the_character(check_char):
    # A check-character issue has an "expected" parameter too: it must stay the
    # character, never be read as a toll class.
    from etcnet.core.errors import FieldIssue

    issue = FieldIssue(
        "id_number",
        "id.checksum",
        "The check character is {found} but should be {expected}.",
        {"found": "2", "expected": check_char},
    )
    assert issue.message == f"校验位为 2，应为 {check_char}。"
