"""Data: each existing customer's outlet is the outlet of its first application
(the one that opened it). One set-based UPDATE, not a loop over customers."""

from typing import Any

from django.db import migrations
from django.db.models import OuterRef, Subquery


def backfill(apps: Any, schema_editor: Any) -> None:
    Customer = apps.get_model("issuance", "Customer")
    Application = apps.get_model("issuance", "Application")
    first_outlet = (
        Application.objects.filter(customer_id=OuterRef("pk"))
        .order_by("created_at", "id")
        .values("outlet_id")[:1]
    )
    Customer.objects.filter(outlet__isnull=True).update(outlet_id=Subquery(first_outlet))


class Migration(migrations.Migration):
    dependencies = [("issuance", "0002_customer_outlet_and_change_review")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
