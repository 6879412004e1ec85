"""Data: the vehicle office clerk's role group (plate pre-selection registrations)."""

from django.db import migrations

ROLE = "vehicle_office_clerk"


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=ROLE)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=ROLE).delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0002_role_groups")]

    operations = [migrations.RunPython(create_group, remove_group)]
