"""The demo data behind `etcnet load_demo` and `etcnet center demo`: demo users (one
per role), an outlet, customers and vehicles in different states, and emulated cards
and OBUs issued to them with balances — all made through the real services, so the
audit trail and the ledger are real. Safe to run again: existing demo data is kept,
passwords reset.

The demo generates its own issuer master keys (`ETCNET_KEYS_FILE`, by default
`var/keys.json`) when none are configured; emulated cards live under
`ETCNET_CARD_DIR` (`var/cards/`), so a terminal can use them later.

It sits above every app (an import-linter layer): it may use them all, none uses it."""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import OutputWrapper
from django.core.management.color import Style
from django.test import override_settings
from django.utils import timezone

from etcnet.cards import devices, vault
from etcnet.cards import services as cards
from etcnet.cards.models import Batch, CardUnit, UnitKind
from etcnet.core.roles import Role
from etcnet.core.sms import MemorySmsSender
from etcnet.demo import clearing
from etcnet.demo.banks import DEBIT_ACCOUNT, DEBIT_BANK
from etcnet.issuance import samples, services
from etcnet.issuance.models import Application, Outlet, OutletMembership
from etcnet.lists import services as lists
from etcnet.lists.models import ListVersion
from etcnet.network import services as network
from etcnet.network.models import Lane, Node, NodeKind, TariffVersion
from etcnet.plates import samples as plates
from etcnet.smartcard import ops
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.files import Card0019
from etcnet.smartcard.transport import open_emulated
from etcnet.tolling import services as tolling
from etcnet.tolling.models import StationMembership, Terminal

DEMO_PASSWORD = "etcnet-demo"
DEMO_TERMINAL = "HH-DEMO"
USERS = [
    ("clerk", "王发行", Role.ISSUANCE_CLERK),
    ("collector", "赵收费", Role.TOLL_COLLECTOR),
    ("master", "钱站长", Role.STATION_MASTER),
    ("operator", "孙中心", Role.CENTER_OPERATOR),
    ("auditor", "周稽核", Role.AUDITOR),
    ("office", "李车管", Role.VEHICLE_OFFICE_CLERK),
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


class Loader:
    """Loads the demo, reporting on the command's ``stdout`` with its ``style``."""

    def __init__(self, stdout: OutputWrapper, style: Style) -> None:
        self.stdout = stdout
        self.style = style

    def run(self) -> None:
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

        if not os.environ.get("ETCNET_KEYS") and not Path(settings.ETCNET_KEYS_FILE).exists():
            vault.generate_key_file(Path(settings.ETCNET_KEYS_FILE))
            vault.reset_cache()
            self.stdout.write(f"Generated demo issuer keys in {settings.ETCNET_KEYS_FILE}")
        if not TariffVersion.objects.exists():
            self._network()
        if not Application.objects.exists():
            with override_settings(ETCNET_SMS_SENDER="etcnet.core.sms.MemorySmsSender"):
                approved = self._applications(users["clerk"])
            if not Batch.objects.exists():
                self._cards(users["clerk"], approved)

        if TariffVersion.objects.exists():
            self._terminal(users["operator"])
            station = Node.objects.get(node_id="S1201005")  # 小孙庄, where HH-DEMO works
            for name in ("collector", "master"):
                StationMembership.objects.get_or_create(user=users[name], station=station)
        if not ListVersion.objects.exists():
            report = lists.publish(full=True, actor="etcnet center demo")
            self.stdout.write(
                f"Status list version {report.version.number} published (full and increment)."
            )

        cleared = clearing.load()
        if cleared:
            self.stdout.write(f"Clearing: {cleared} (/clearing/).")

        made = plates.load_demo(operator=users["operator"], clerk=users["office"])
        if made:
            self.stdout.write(f"Plate pre-selection: {made} (public site /plates/).")

        self.stdout.write(
            self.style.SUCCESS(f"Demo data loaded. Logins (password for all: {DEMO_PASSWORD}):")
        )
        for username, full_name, role in USERS:
            self.stdout.write(f"  {username:<10} {full_name}  {role.label}")
        self.stdout.write("SMS codes are written to this console (the log SMS sender).")

    def _terminal(self, operator: User) -> None:
        """The demo handheld HH-DEMO at 小孙庄 (entry lane 01, exit lanes 03 and 04),
        its PSAM in the card folder and its secret in var/terminal-HH-DEMO/secret."""
        folder = Path(settings.DATA_DIR) / f"terminal-{DEMO_TERMINAL}"
        secret_file = folder / "secret"
        if Terminal.objects.filter(terminal_id=DEMO_TERMINAL).exists():
            if secret_file.exists():
                return
            secret = tolling.reset_secret(DEMO_TERMINAL, actor=operator)
        else:
            _, secret, _ = tolling.register_terminal(
                DEMO_TERMINAL, station_id="S1201005", lanes=[1, 3, 4], actor=operator
            )
        folder.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secret)
        secret_file.chmod(0o600)
        _demo_entry("61010000000000000001", "12010E02")
        self.stdout.write(f"Demo terminal {DEMO_TERMINAL} at 小孙庄 (lanes 01 entry, 03/04 exit).")

    def _network(self) -> None:
        effective = timezone.make_aware(dt.datetime(2026, 1, 1))
        record = network.import_bundle(
            DEMO_BUNDLE, effective_at=effective, source_name="demo_bundle (天津, illustrative)"
        )
        if record.version is None:
            raise RuntimeError(f"the demo bundle was refused: {record.problems[:3]}")
        count = _demo_lanes()
        self.stdout.write(
            f"Demo network: version {record.version.number}, "
            f"{record.summary['stations']} stations, {record.summary['intervals']} intervals, "
            f"{count} lanes (illustrative Tianjin data)."
        )

    def _applications(self, clerk: User) -> list[Application]:
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

        # 3. An organization's truck, refused: the class given (1类货车) does not
        #    match a 12 t, 7.2 m two-axle truck.
        c = _verified("13900139000", clerk)
        services.save_customer(c.pk, data=samples.organization_customer(), actor=clerk)
        services.save_vehicle(c.pk, data=samples.two_axle_truck(toll_class="11"), actor=clerk)
        _photos(c, [*every_photo, "entrust_letter"], clerk)
        services.submit_application(c.pk, actor=clerk)

        # 4. Still in progress: the phone is verified, the customer step saved.
        approved = [a, b]
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
        return approved

    def _cards(self, clerk: User, approved: list[Application]) -> None:
        cards_nos = [f"6101{n:016d}" for n in range(1, 11)]
        obu_nos = [f"{6101_0000_0000_0000 + n:016d}" for n in range(1, 11)]
        cards.receive_batch(
            kind=UnitKind.CARD,
            reference="DEMO-C-001",
            serials=cards_nos,
            emulated=True,
            actor=clerk,
        )
        cards.receive_batch(
            kind=UnitKind.OBU, reference="DEMO-O-001", serials=obu_nos, emulated=True, actor=clerk
        )
        first, second = approved
        # 张三's car: a stored-value card with 200.00 yuan, OBU activated.
        binding = cards.issue(
            first.pk, card_no=cards_nos[0], contract_no=obu_nos[0], card_type=22, actor=clerk
        )
        cards.activate(binding.pk, photo=_upload("obu-installed"), actor=clerk)
        cards.top_up(
            cards_nos[0], amount_fen=20_000, channel="cash", idempotency_key="demo-1", actor=clerk
        )
        # 张三's new-energy car: a debit card (记账卡) of the same account, not yet activated.
        debit = cards.issue(
            second.pk, card_no=cards_nos[1], contract_no=obu_nos[1], card_type=23, actor=clerk
        )
        # Its tolls are collected by 工商银行 under the three-party agreement (三方协议),
        # one of the demo's simulated banks (etcnet.demo.banks).
        account = debit.card.account
        assert account is not None  # an issued card belongs to its customer's account
        cards.link_bank_account(
            account.number, bank_name=DEBIT_BANK, bank_account_no=DEBIT_ACCOUNT,
            actor=clerk,
        )  # fmt: skip
        self.stdout.write(
            f"Emulated cards in {settings.ETCNET_CARD_DIR}: {cards_nos[0]} (200.00 yuan), "
            f"{cards_nos[1]} (debit, {DEBIT_BANK}); {len(cards_nos) - 2} cards and OBUs in stock."
        )


DEMO_BUNDLE = Path(__file__).resolve().parents[1] / "network" / "demo_bundle"


def _demo_entry(card_no: str, station_hex: str) -> None:
    """The demo car entered the closed road at 杨村 an hour ago: the entry lane
    wrote 0019 with a zero-amount composite purchase, as entry lanes do (here
    signed by the center's own PSAM), so the demo terminal's exits have a real entry."""
    card = CardUnit.objects.filter(card_no=card_no).first()
    if card is None or not card.emulator_file:
        return
    transport = devices.open_unit(card)
    reading = ops.read_card(transport)
    if reading.f0015 is None or (reading.f0019 is not None and reading.f0019.lane_status):
        return  # not issued, or it has entered or left somewhere already
    entered = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    record = Card0019(
        network=station_hex[:4],
        station=int(station_hex[4:], 16),
        lane=1,
        time=int(entered.timestamp()),
        vehicle_class=1,
        lane_status=0x03,
        plate=reading.f0015.plate,
        plate_color=int(reading.f0015.plate_color),
    )
    with tempfile.TemporaryDirectory() as folder:
        psam = Path(folder) / "entry-psam.json"
        devices.provision_psam(
            psam, terminal_no=settings.ETCNET_COUNTER_TERMINAL_NO, alg=Alg(card.alg)
        )
        ops.purchase(
            transport,
            open_emulated(psam),
            amount=0,
            when=entered.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None),
            record0019=record,
        )


def _demo_lanes() -> int:
    """Every station gets entry lanes 01 (mixed) and 02 (ETC) and exit lanes 03
    (mixed) and 04 (ETC); a few are switched off, as on a real network."""
    lanes = []
    for n, station in enumerate(Node.objects.filter(kind=NodeKind.STATION).order_by("node_id")):
        for number, direction, lane_type in (
            (1, "entry", "mixed"),
            (2, "entry", "etc"),
            (3, "exit", "mixed"),
            (4, "exit", "etc"),
        ):
            lanes.append(
                Lane(
                    station=station,
                    number=number,
                    direction=direction,
                    lane_type=lane_type,
                    enabled=not (n % 9 == 4 and number == 4),
                )
            )
    Lane.objects.bulk_create(lanes, ignore_conflicts=True)
    return len(lanes)


def _upload(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(f"{text}.jpg", samples.photo_bytes(text), "image/jpeg")
