"""`etcnet load_demo`: demo users (one per role), an outlet, and customers and
vehicles in different states, made through the real services so the audit
trail is real. Safe to run again: existing demo data is kept, passwords reset."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.test import override_settings

from etcnet.core.roles import Role
from etcnet.core.sms import MemorySmsSender
from etcnet.issuance import samples, services
from etcnet.issuance.models import Application, Outlet, OutletMembership

DEMO_PASSWORD = "etcnet-demo"
USERS = [
    ("clerk", "王发行", Role.ISSUANCE_CLERK),
    ("collector", "赵收费", Role.TOLL_COLLECTOR),
    ("master", "钱站长", Role.STATION_MASTER),
    ("operator", "孙中心", Role.CENTER_OPERATOR),
    ("auditor", "周稽核", Role.AUDITOR),
]


def _photos(application: Application, kinds: list[str], actor: User) -> None:
    files = {
        kind: SimpleUploadedFile(f"{kind}.jpg", samples.photo_bytes(kind), "image/jpeg")
        for kind in kinds
    }
    services.upload_documents(application.pk, files=files, actor=actor)


def _verified(phone: str, actor: User) -> Application:
    MemorySmsSender.outbox.clear()
    application = services.start_application(phone=phone, actor=actor)
    code = re.findall(r"(?<!\d)\d{6}(?!\d)", MemorySmsSender.outbox[-1].text)[-1]
    services.verify_phone(application.pk, code=code, actor=actor)
    return application


class Command(BaseCommand):
    help = "Load the demo users, outlet, customers and vehicles (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        outlet, _ = Outlet.objects.get_or_create(
            code="610101001",
            defaults={"name": "西安城南ETC服务网点", "address": "陕西省西安市雁塔区长安南路1号"},
        )
        users = {}
        for username, full_name, role in USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.first_name = full_name
            user.set_password(DEMO_PASSWORD)
            user.is_active = True
            user.save()
            user.groups.add(Group.objects.get(name=role.value))
            users[username] = user
        users["operator"].is_staff = True
        users["operator"].is_superuser = True
        users["operator"].save()
        OutletMembership.objects.get_or_create(user=users["clerk"], defaults={"outlet": outlet})

        if not Application.objects.exists():
            with override_settings(ETCNET_SMS_SENDER="etcnet.core.sms.MemorySmsSender"):
                self._applications(users["clerk"])

        self.stdout.write(
            self.style.SUCCESS(f"Demo data loaded. Logins (password for all: {DEMO_PASSWORD}):")
        )
        for username, full_name, role in USERS:
            self.stdout.write(f"  {username:<10} {full_name}  {role.label}")
        self.stdout.write("SMS codes are written to this console (the log SMS sender).")

    def _applications(self, clerk: User) -> None:
        every_photo = ["id_photo", "licence_main", "licence_supplement", "vehicle_head"]

        # 1. A personal customer, approved: the car waits for card and OBU issuance.
        a = _verified("13800138000", clerk)
        services.save_customer(a.pk, data=samples.personal_customer(), actor=clerk)
        services.save_vehicle(a.pk, data=samples.passenger_car(), actor=clerk)
        _photos(a, every_photo, clerk)
        services.submit_application(a.pk, actor=clerk)

        # 2. The same customer's second car: recognised by the ID number.
        b = _verified("13800138000", clerk)
        services.save_customer(b.pk, data=samples.personal_customer(), actor=clerk)
        services.save_vehicle(
            b.pk,
            data=samples.passenger_car(
                plate="陕AD12345", plate_color="4", vin=samples.vin("LGXC16DF4N0", "112233")
            ),
            actor=clerk,
        )
        _photos(b, every_photo, clerk)
        services.submit_application(b.pk, actor=clerk)

        # 3. An organization's truck, refused: no entrust letter, and the class
        #    given (1类货车) does not match a 12 t, 7.2 m two-axle truck.
        c = _verified("13900139000", clerk)
        services.save_customer(c.pk, data=samples.organization_customer(), actor=clerk)
        services.save_vehicle(c.pk, data=samples.two_axle_truck(toll_class="11"), actor=clerk)
        _photos(c, every_photo, clerk)
        services.submit_application(c.pk, actor=clerk)

        # 4. Still in progress: the phone is verified, the customer step saved.
        d = _verified("13700137000", clerk)
        services.save_customer(
            d.pk,
            data=samples.personal_customer(
                name="王五",
                id_number=samples.resident_id("110105", "19790312", "417"),
                address="北京市朝阳区建国路88号",
            ),
            actor=clerk,
        )
