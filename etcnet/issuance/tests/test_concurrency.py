"""Concurrent approvals through real transactions (run on both databases; on
PostgreSQL the two submissions truly overlap)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from conftest import complete_application
from etcnet.issuance import samples, services
from etcnet.issuance.models import Application, Customer, Vehicle

pytestmark = pytest.mark.django_db(transaction=True)


def _submit_together(pairs):
    barrier = threading.Barrier(len(pairs))
    results: dict[int, object] = {}

    def run(application_id, actor):
        try:
            barrier.wait(timeout=10)
            results[application_id] = services.submit_application(application_id, actor=actor)
        except Exception as error:  # the assertion below shows it
            results[application_id] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_approvals_of_one_new_customer_share_the_customer(clerk, other_clerk):
    # given the same new person applying for two different cars at once
    first = complete_application(clerk)
    second = complete_application(
        other_clerk,
        vehicle=samples.passenger_car(plate="陕A22222", vin=samples.vin(serial="222222")),
    )

    results = _submit_together([(first.pk, clerk), (second.pk, other_clerk)])

    # then both are approved: one customer, two vehicles, no false plate refusal
    assert [getattr(r, "approved", r) for r in results.values()] == [True, True]
    assert Customer.objects.count() == 1
    assert sorted(Vehicle.objects.values_list("plate", flat=True)) == ["陕A12345", "陕A22222"]


def test_two_approvals_of_one_new_customer_with_two_phones_hold_one_for_review(clerk, other_clerk):
    # given the same new person applying at once with two different phones
    first = complete_application(clerk)
    second = complete_application(
        other_clerk,
        vehicle=samples.passenger_car(plate="陕A22222", vin=samples.vin(serial="222222")),
        phone="13900001111",
    )

    results = _submit_together([(first.pk, clerk), (second.pk, other_clerk)])

    # then one creates the customer; the other's phone is not applied silently
    assert sorted(getattr(r, "approved", r) for r in results.values()) == [False, True]
    customer = Customer.objects.get()
    assert Vehicle.objects.count() == 1
    statuses = sorted(Application.objects.values_list("status", flat=True))
    assert statuses == ["approved", "review"]
    waiting = Application.objects.get(status="review")
    assert waiting.customer_changes["phone"] == [customer.phone, waiting.phone]


def test_two_approvals_of_one_plate_let_one_through(clerk, other_clerk):
    first = complete_application(clerk)
    second = complete_application(
        other_clerk,
        customer=samples.personal_customer(name="赵六", id_number=samples.resident_id(seq="555")),
        phone="13911112222",
    )

    results = _submit_together([(first.pk, clerk), (second.pk, other_clerk)])

    assert sorted(getattr(r, "approved", r) for r in results.values()) == [False, True]
    assert Vehicle.objects.filter(plate="陕A12345").count() == 1
