"""Data: each existing customer's outlet is the outlet of its first approved
application (the one that opened it)."""

from typing import Any

from django.db import migrations


def backfill(apps: Any, schema_editor: Any) -> None:
    Customer = apps.get_model("issuance", "Customer")
    Application = apps.get_model("issuance", "Application")
    for customer in Customer.objects.filter(outlet__isnull=True).iterator():
        first = (
            Application.objects.filter(customer_id=customer.pk)
            .order_by("created_at", "id")
            .values_list("outlet_id", flat=True)
            .first()
        )
        if first is not None:
            Customer.objects.filter(pk=customer.pk).update(outlet_id=first)


class Migration(migrations.Migration):
    dependencies = [("issuance", "0002_customer_outlet_and_change_review")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
