"""Clearing packages as files (docs/clearing-packages.md): the worked messages written
byte for byte, every kind round-tripped, exact yuan, every refusal naming its field,
XML bombs and oversize files refused before parsing, packages of at most 10,000.

Pure unit tests: no database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcnet.clearing import packages
from etcnet.clearing.packages import (
    MAX_TRANSACTIONS,
    OBU,
    VEHICLE_TYPES,
    AccountingResult,
    Algorithm,
    CardType,
    ClearingList,
    ClearingSummary,
    CustomizedData,
    DisputedRecord,
    DisputeResult,
    Header,
    ICCard,
    Message,
    PackageError,
    Response,
    ResponseResult,
    Service,
    Transaction,
    TransactionPackage,
    TransType,
    Validation,
    build_packages,
    chunk,
    read,
    write,
)
from etcnet.core import codes
from etcnet.core.money import MAX_FEN

CHINA = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2026, 11, 30)
PROVINCE, CENTER = "0000000000003201", "0000000000000001"


# --- The worked messages (the examples of docs/clearing-packages.md) --------------------


def transaction(**changes: object) -> Transaction:
    """A class-1 car's exit at 苏州东 paid 71.49 by a stored-value card with its OBU."""
    made = Transaction(
        time=dt.datetime(2026, 11, 30, 8, 12, 5, tzinfo=CHINA),
        fee_fen=7149,
        service=Service(1, "通行费", "G42 苏州东-上海"),
        card=ICCard(
            CardType.STORED_VALUE, "3201", "32011901230000012345", "苏E12345", 20000, 12851
        ),
        validation=Validation("6F1D2A90", TransType.COMPOSITE, "320100000012", "0000A1C4"),
        customized=CustomizedData(
            880001, 57, "苏州东", "上海", ("G004232001001", "G004232001002", "G004232001003")
        ),
        vehicle_type=1,
        algorithm=Algorithm.SM4,
        obu=OBU("3201", "3201190220052902", "00", "苏E12345"),
    )
    return dataclasses.replace(made, **changes)


def debit_card_transaction() -> Transaction:
    """A class-1 truck's 50.00 by a debit card read without an OBU, 3DES."""
    return Transaction(
        time=dt.datetime(2026, 11, 30, 17, 40, 0, tzinfo=CHINA),
        fee_fen=5000,
        service=Service(1, "通行费", "G2 无锡-南京"),
        card=ICCard(CardType.DEBIT, "3201", "32011901230000067890", "苏A6789D", 0, 0),
        validation=Validation("0B93C7E4", TransType.TRADITIONAL, "320100000031", "000001F0"),
        customized=CustomizedData(880002, 0, "南京", "无锡", ("G000232002001",)),
        vehicle_type=11,
        algorithm=Algorithm.TDES,
    )


def package(*transactions: Transaction, first_message_id: int = 41) -> TransactionPackage:
    (made,) = build_packages(
        transactions or (transaction(), debit_card_transaction()),
        clear_target_date=DAY,
        service_provider_id="320101",
        issuer_id="320102",
        sender_id=PROVINCE,
        receiver_id=CENTER,
        first_message_id=first_message_id,
    )
    return made


def accounting_result() -> AccountingResult:
    return AccountingResult(
        header=Header(CENTER, PROVINCE, 108),
        clear_target_date=DAY,
        service_provider_id="320101",
        issuer_id="320102",
        message_id=41,
        count=1,
        amount_fen=7149,
        disputed=(DisputedRecord(2, DisputeResult.CARD_STATUS_MISMATCH),),
    )


def clearing_summary() -> ClearingSummary:
    return ClearingSummary(
        header=Header(CENTER, PROVINCE, 131),
        clear_target_date=DAY,
        count=19998,
        amount_fen=143_001_249,
        process_time=dt.datetime(2026, 12, 1, 4, 0, 0, tzinfo=CHINA),
        issuer_id="320102",
        lists=(ClearingList("320101", (41, 42), (3,)), ClearingList("320201", (17,), ())),
    )


def response() -> Response:
    return Response(Header(CENTER, PROVINCE, 41), 7, 1, ResponseResult.RECEIVED)


def document(kind: tuple[int, int], header: Header, body: str) -> str:
    """A document as ``write`` gives it: ``kind`` is (MessageClass, MessageType)."""
    message_class, message_type = kind
    return f"""\
<?xml version="1.0" encoding="UTF-8"?>
<Message>
  <Header>
    <Version>00020000</Version>
    <MessageClass>{message_class}</MessageClass>
    <MessageType>{message_type}</MessageType>
    <SenderId>{header.sender_id}</SenderId>
    <ReceiverId>{header.receiver_id}</ReceiverId>
    <MessageId>{header.message_id}</MessageId>
  </Header>
  <Body>
{body}  </Body>
</Message>
"""


PACKAGE_XML = document(
    (5, 7),
    Header(PROVINCE, CENTER, 41),
    """\
    <ContentType>1</ContentType>
    <ClearTargetDate>2026-11-30</ClearTargetDate>
    <ServiceProviderId>320101</ServiceProviderId>
    <IssuerId>320102</IssuerId>
    <MessageId>41</MessageId>
    <Count>2</Count>
    <Amount>121.49</Amount>
    <Transaction><TransId>1</TransId><Time>2026-11-30T08:12:05+08:00</Time><Fee>71.49</Fee>\
<Service><ServiceType>1</ServiceType><Description>通行费</Description>\
<Detail>G42 苏州东-上海</Detail></Service><ICCard><CardType>22</CardType><NetNo>3201</NetNo>\
<CardId>32011901230000012345</CardId><License>苏E12345</License>\
<PreBalance>200.00</PreBalance><PostBalance>128.51</PostBalance></ICCard>\
<Validation><TAC>6F1D2A90</TAC><TransType>09</TransType><TerminalNo>320100000012</TerminalNo>\
<TerminalTransNo>0000A1C4</TerminalTransNo></Validation><OBU><NetNo>3201</NetNo>\
<OBUId>3201190220052902</OBUId><OBEState>00</OBEState><License>苏E12345</License></OBU>\
<CustomizedData><SourceId>880001</SourceId><CardTransNo>57</CardTransNo>\
<ExitStation>苏州东</ExitStation><EntryStation>上海</EntryStation>\
<Intervals>G004232001001 G004232001002 G004232001003</Intervals></CustomizedData>\
<VehicleType>1</VehicleType><AlgorithmIdentifier>2</AlgorithmIdentifier></Transaction>
    <Transaction><TransId>2</TransId><Time>2026-11-30T17:40:00+08:00</Time><Fee>50.00</Fee>\
<Service><ServiceType>1</ServiceType><Description>通行费</Description>\
<Detail>G2 无锡-南京</Detail></Service><ICCard><CardType>23</CardType><NetNo>3201</NetNo>\
<CardId>32011901230000067890</CardId><License>苏A6789D</License>\
<PreBalance>0.00</PreBalance><PostBalance>0.00</PostBalance></ICCard>\
<Validation><TAC>0B93C7E4</TAC><TransType>06</TransType><TerminalNo>320100000031</TerminalNo>\
<TerminalTransNo>000001F0</TerminalTransNo></Validation>\
<CustomizedData><SourceId>880002</SourceId><CardTransNo>0</CardTransNo>\
<ExitStation>南京</ExitStation><EntryStation>无锡</EntryStation>\
<Intervals>G000232002001</Intervals></CustomizedData>\
<VehicleType>11</VehicleType><AlgorithmIdentifier>1</AlgorithmIdentifier></Transaction>
""",
)

ACCOUNTING_XML = document(
    (5, 5),
    Header(CENTER, PROVINCE, 108),
    """\
    <ContentType>1</ContentType>
    <ClearTargetDate>2026-11-30</ClearTargetDate>
    <ServiceProviderId>320101</ServiceProviderId>
    <IssuerId>320102</IssuerId>
    <MessageId>41</MessageId>
    <Count>1</Count>
    <Amount>71.49</Amount>
    <DisputedCount>1</DisputedCount>
    <DisputedRecord>
      <TransId>2</TransId>
      <Result>9</Result>
    </DisputedRecord>
""",
)

SUMMARY_XML = document(
    (5, 5),
    Header(CENTER, PROVINCE, 131),
    """\
    <ContentType>2</ContentType>
    <ClearTargetDate>2026-11-30</ClearTargetDate>
    <Count>19998</Count>
    <Amount>1430012.49</Amount>
    <ProcessTime>2026-12-01T04:00:00+08:00</ProcessTime>
    <IssuerId>320102</IssuerId>
    <List>
      <MessageCount>2</MessageCount>
      <FileCount>1</FileCount>
      <ServiceProviderId>320101</ServiceProviderId>
      <MessageId>41</MessageId>
      <MessageId>42</MessageId>
      <FileId>3</FileId>
    </List>
    <List>
      <MessageCount>1</MessageCount>
      <FileCount>0</FileCount>
      <ServiceProviderId>320201</ServiceProviderId>
      <MessageId>17</MessageId>
    </List>
""",
)

RESPONSE_XML = document(
    (6, 7),
    Header(CENTER, PROVINCE, 41),
    """\
    <ContentType>1</ContentType>
    <Result>1</Result>
""",
)


WORKED = [
    pytest.param(package, PACKAGE_XML, id="transaction package"),
    pytest.param(accounting_result, ACCOUNTING_XML, id="accounting result"),
    pytest.param(clearing_summary, SUMMARY_XML, id="clearing summary"),
    pytest.param(response, RESPONSE_XML, id="response"),
]


@pytest.mark.parametrize(("make", "xml"), WORKED)
def test_each_worked_message_is_written_byte_for_byte_and_read_back(make, xml):
    message = make()

    data = write(message)

    assert data == xml.encode("utf-8")
    assert read(data) == message


def test_the_package_states_its_count_and_the_sum_of_its_fees():
    made = package()

    assert (made.count, made.amount_fen) == (2, 7149 + 5000)
    assert [t.trans_id for t in made.transactions] == [1, 2]
    assert made.header.message_id == made.message_id == 41
    assert read(write(made)).transactions[1].obu is None


@pytest.mark.parametrize(("make", "xml"), WORKED)
def test_a_reindented_document_in_another_element_order_reads_the_same(make, xml):
    # Another writer's layout: every element on its own line, the Header after the Body
    # and each transaction's elements reversed — the reader goes by name.
    root = ET.fromstring(xml.encode())
    root[:] = reversed(list(root))
    for node in root.iter("Transaction"):
        node[:] = reversed(list(node))
    ET.indent(root)

    assert read(ET.tostring(root, encoding="utf-8")) == make()


def test_a_time_is_written_at_plus_eight_hours():
    at_utc = dt.datetime(2026, 11, 30, 0, 12, 5, tzinfo=dt.UTC)

    data = write(package(transaction(time=at_utc)))

    assert b"<Time>2026-11-30T08:12:05+08:00</Time>" in data
    assert read(data).transactions[0].time == at_utc


def test_text_with_markup_characters_and_a_carriage_return_comes_back_as_written():
    detail = "a & b < c > d \"e\" 'f'\r\n\tg"
    made = package(transaction(service=Service(1, "通行费", detail)))

    data = write(made)

    assert b"a &amp; b &lt; c &gt; d" in data
    assert read(data).transactions[0].service.detail == detail


def test_the_module_codes_agree_with_the_house_code_tables():
    assert {c.value for c in codes.VehicleClass} == VEHICLE_TYPES
    assert {c.value for c in codes.CardType} == {c.value for c in CardType}


# --- Yuan: exact to the fen ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (10, "0.10"),
        (100, "1.00"),
        (7149, "71.49"),
        (-1, "-0.01"),
        (-7149, "-71.49"),
        (MAX_FEN, "92233720368547758.07"),
        (-MAX_FEN, "-92233720368547758.07"),
    ],
)
def test_a_balance_in_fen_is_written_in_yuan_with_two_decimals_and_read_back_exactly(fen, yuan):
    card = dataclasses.replace(transaction().card, pre_balance_fen=fen)

    data = write(package(transaction(card=card)))

    assert f"<PreBalance>{yuan}</PreBalance>".encode() in data
    assert read(data).transactions[0].card.pre_balance_fen == fen


@pytest.mark.parametrize(("fen", "yuan"), [(1, "0.01"), (7149, "71.49"), (123456789, "1234567.89")])
def test_fees_and_the_amount_are_yuan_and_add_up_exactly(fen, yuan):
    made = package(transaction(fee_fen=fen), transaction(fee_fen=fen))

    data = write(made)

    assert f"<Fee>{yuan}</Fee>".encode() in data
    assert read(data).amount_fen == 2 * fen


def test_a_negative_fee_is_refused():
    with pytest.raises(PackageError) as refused:
        write(package(transaction(fee_fen=-1)))

    assert str(refused.value) == (
        "Body/Transaction[1]/Fee: expected 0.00 to 92233720368547758.07 yuan, got -1"
    )


@pytest.mark.parametrize(
    "text", ["71.5", "71", "71.490", "7.149e1", "+71.49", " 71.49", "71,49", "７１.４９", ""]
)
def test_a_fee_not_written_with_exactly_two_decimals_is_refused(text):
    data = write(package()).replace(b"<Fee>71.49</Fee>", f"<Fee>{text}</Fee>".encode())

    with pytest.raises(PackageError) as refused:
        read(data)

    assert refused.value.field == "Body/Transaction[1]/Fee"
    assert refused.value.message == (f"expected yuan with two decimals like 12.30, got {text!r}")


# --- Round trips --------------------------------------------------------------------------

ZONES = st.sampled_from([dt.UTC, CHINA, dt.timezone(dt.timedelta(hours=-5, minutes=-30))])
times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31), timezones=ZONES
).map(lambda value: value.replace(microsecond=0))
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))
# What XML 1.0 carries, markup characters and a carriage return included.
free = st.characters(blacklist_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n\r&<>\"'")


def texts(limit: int) -> st.SearchStrategy[str]:
    return st.text(free, max_size=limit)


def digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=low, max_size=high)


def hexes(size: int) -> st.SearchStrategy[str]:
    return st.text("0123456789ABCDEF", min_size=size, max_size=size)


parties = st.text("0123456789ABCDEFabcdefXYZ", min_size=1, max_size=32)
ids = st.integers(1, 2**63 - 1)
fen = st.integers(-MAX_FEN, MAX_FEN)
headers = st.builds(Header, hexes(16), hexes(16), ids, st.sampled_from(packages.VERSIONS))
interval_ids = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=32,
)
transactions = st.builds(
    Transaction,
    time=times,
    fee_fen=st.integers(0, 10**12),
    service=st.builds(Service, st.integers(0, 2**31 - 1), texts(255), texts(255)),
    card=st.builds(
        ICCard,
        st.sampled_from(CardType),
        digits(4, 4),
        digits(16, 20),
        texts(32),
        fen,
        fen,
    ),
    validation=st.builds(Validation, hexes(8), st.sampled_from(TransType), hexes(12), hexes(8)),
    customized=st.builds(
        CustomizedData,
        ids,
        st.integers(0, 0xFFFF),
        texts(64),
        texts(64),
        st.lists(interval_ids, max_size=8).map(tuple),
    ),
    vehicle_type=st.sampled_from(sorted(VEHICLE_TYPES)),
    algorithm=st.sampled_from(Algorithm),
    obu=st.none() | st.builds(OBU, digits(4, 4), digits(16, 16), hexes(2) | hexes(4), texts(32)),
)


@st.composite
def transaction_packages(draw: st.DrawFn) -> TransactionPackage:
    made = draw(st.lists(transactions, min_size=1, max_size=6))
    # TransIds in any order: the package is read in document order, each by its id.
    numbers = draw(st.permutations(range(1, len(made) + 1)))
    return TransactionPackage(
        header=draw(headers),
        clear_target_date=draw(dates),
        service_provider_id=draw(parties),
        issuer_id=draw(parties),
        message_id=draw(ids),
        transactions=tuple(
            dataclasses.replace(t, trans_id=n) for t, n in zip(made, numbers, strict=True)
        ),
    )


accounting_results = st.builds(
    AccountingResult,
    header=headers,
    clear_target_date=dates,
    service_provider_id=parties,
    issuer_id=parties,
    message_id=ids,
    count=st.integers(0, MAX_TRANSACTIONS),
    amount_fen=st.integers(0, MAX_FEN),
    disputed=st.lists(
        st.builds(DisputedRecord, st.integers(1, MAX_TRANSACTIONS), st.sampled_from(DisputeResult)),
        max_size=6,
        unique_by=lambda record: record.trans_id,
    ).map(tuple),
)
clearing_summaries = st.builds(
    ClearingSummary,
    header=headers,
    clear_target_date=dates,
    count=st.integers(0, 2**63 - 1),
    amount_fen=st.integers(0, MAX_FEN),
    process_time=times,
    issuer_id=parties,
    lists=st.lists(
        st.builds(
            ClearingList,
            parties,
            st.lists(ids, max_size=4).map(tuple),
            st.lists(ids, max_size=4).map(tuple),
        ),
        max_size=4,
    ).map(tuple),
)
responses = st.sampled_from([(7, 1), (5, 1), (5, 2)]).flatmap(
    lambda kind: st.builds(
        Response, headers, st.just(kind[0]), st.just(kind[1]), st.sampled_from(ResponseResult)
    )
)
messages = transaction_packages() | accounting_results | clearing_summaries | responses


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_every_message_reads_back_as_written(message: Message):
    data = write(message)

    again = read(data)

    assert again == message
    assert write(again) == data


XMLS = [PACKAGE_XML, ACCOUNTING_XML, SUMMARY_XML, RESPONSE_XML]
PIECES = [b"<", b">", b"/", b"&", b"-", b".", b"0", b" ", b"\xe8", b"<Fee>", b"</OBU>"]
PIECES += [b"<Transaction>", b"<MessageId>1</MessageId>", b"<![CDATA[x]]>", b"<!-- c -->", b"&#0;"]


@st.composite
def damaged_documents(draw: st.DrawFn) -> bytes:
    """A worked document with a few pieces inserted, cut out or copied over."""
    data = bytearray(draw(st.sampled_from([x.encode() for x in XMLS])))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "cut", "copy"]))
        if edit == "insert":
            data[at:at] = draw(st.sampled_from(PIECES))
        elif edit == "cut":
            del data[at : at + draw(st.integers(1, 30))]
        else:
            source = draw(st.integers(0, len(data)))
            data[at : at + 5] = data[source : source + 5]
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(damaged_documents())
def test_a_damaged_document_is_refused_by_a_package_error_or_read_whole(data: bytes):
    try:
        message = read(data)
    except PackageError:
        return  # never a KeyError, ValueError, UnicodeError … from inside
    assert read(write(message)) == message


# --- Refusals, each naming its field ------------------------------------------------------


def edited(old: str, new: str, *, count: int = 1, xml: str = PACKAGE_XML) -> bytes:
    """The worked document with ``old`` replaced by ``new`` (``count`` times)."""
    assert xml.count(old) >= count, old
    return xml.replace(old, new, count).encode("utf-8")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            edited("<CardId>32011901230000067890</CardId>", "<CardId>3201190123</CardId>"),
            "Body/Transaction[2]/ICCard/CardId",
            "expected 16-20 digits, got '3201190123'",
        ),
        (
            edited("<TAC>6F1D2A90</TAC>", ""),
            "Body/Transaction[1]/Validation/TAC",
            "required",
        ),
        (
            edited("<TAC>6F1D2A90</TAC>", "<TAC>6f1d2a90</TAC>"),
            "Body/Transaction[1]/Validation/TAC",
            "expected 8 hex digits (0-9, A-F), got '6f1d2a90'",
        ),
        (
            edited("<TransType>09</TransType>", "<TransType>07</TransType>"),
            "Body/Transaction[1]/Validation/TransType",
            "expected one of 06, 09, got '07'",
        ),
        (
            edited("<TerminalNo>320100000012</TerminalNo>", "<TerminalNo>3201</TerminalNo>"),
            "Body/Transaction[1]/Validation/TerminalNo",
            "expected 12 hex digits (0-9, A-F), got '3201'",
        ),
        (
            edited("<CardType>22</CardType>", "<CardType>24</CardType>"),
            "Body/Transaction[1]/ICCard/CardType",
            "expected one of 22, 23, got 24",
        ),
        (
            edited("<NetNo>3201</NetNo>", "<NetNo>32O1</NetNo>"),
            "Body/Transaction[1]/ICCard/NetNo",
            "expected 4 digits, got '32O1'",
        ),
        (
            edited("<OBUId>3201190220052902</OBUId>", "<OBUId>320119022005290</OBUId>"),
            "Body/Transaction[1]/OBU/OBUId",
            "expected 16 digits, got '320119022005290'",
        ),
        (
            edited("<OBEState>00</OBEState>", "<OBEState>0</OBEState>"),
            "Body/Transaction[1]/OBU/OBEState",
            "expected 2 or 4 hex digits (0-9, A-F), got '0'",
        ),
        (
            edited("<Time>2026-11-30T08:12:05+08:00</Time>", "<Time>2026-11-30T08:12:05</Time>"),
            "Body/Transaction[1]/Time",
            "expected a time like 2026-12-01T08:30:00+08:00, got '2026-11-30T08:12:05'",
        ),
        (
            edited(
                "<Time>2026-11-30T08:12:05+08:00</Time>", "<Time>2026-11-31T08:12:05+08:00</Time>"
            ),
            "Body/Transaction[1]/Time",
            "expected a time like 2026-12-01T08:30:00+08:00, got '2026-11-31T08:12:05+08:00'",
        ),
        (
            edited("<VehicleType>11</VehicleType>", "<VehicleType>5</VehicleType>"),
            "Body/Transaction[2]/VehicleType",
            "expected 1-4, 11-16 or 21-26, got 5",
        ),
        (
            edited(
                "<AlgorithmIdentifier>2</AlgorithmIdentifier>",
                "<AlgorithmIdentifier>3</AlgorithmIdentifier>",
            ),
            "Body/Transaction[1]/AlgorithmIdentifier",
            "expected one of 1, 2, got 3",
        ),
        (
            edited("<CardTransNo>57</CardTransNo>", "<CardTransNo>65536</CardTransNo>"),
            "Body/Transaction[1]/CustomizedData/CardTransNo",
            "expected 0 to 65535, got 65536",
        ),
        (
            edited("<SourceId>880001</SourceId>", "<SourceId>88000l</SourceId>"),
            "Body/Transaction[1]/CustomizedData/SourceId",
            "expected a whole number, got '88000l'",
        ),
        (
            edited("G004232001001 G004232001002", "G004232001001  G004232001002"),
            "Body/Transaction[1]/CustomizedData/Intervals",
            "expected 1-32 characters without spaces, got ''",
        ),
        (
            edited("<License>苏E12345</License>", f"<License>{'苏' * 33}</License>"),
            "Body/Transaction[1]/ICCard/License",
            f"expected text of at most 32 characters, got {'苏' * 33!r}",
        ),
        (
            edited("<CardType>22</CardType>", "<CardType>22</CardType><Chip>1</Chip>"),
            "Body/Transaction[1]/ICCard/Chip",
            "unknown element",
        ),
        (
            edited("<Fee>71.49</Fee>", "<Fee>71.49</Fee><Fee>71.49</Fee>"),
            "Body/Transaction[1]/Fee",
            "appears more than once",
        ),
        (
            edited("<ICCard><CardType>22", "<ICCard>22<CardType>22"),
            "Body/Transaction[1]/ICCard",
            "text between the elements",
        ),
        (
            edited("<Fee>71.49</Fee>", "<Fee><Amount>71.49</Amount></Fee>"),
            "Body/Transaction[1]/Fee",
            "expected a value, found elements",
        ),
        (
            edited("<TransId>2</TransId>", "<TransId>1</TransId>"),
            "Body/Transaction[2]/TransId",
            "1 appears twice",
        ),
        (
            edited("<TransId>2</TransId>", "<TransId>3</TransId>"),
            "Body/Transaction[2]/TransId",
            "expected 1 to 2, got 3",
        ),
        (
            edited("<Count>2</Count>", "<Count>3</Count>"),
            "Body/Count",
            "says 3, but there are 2 Transaction elements",
        ),
        (
            edited("<Amount>121.49</Amount>", "<Amount>121.48</Amount>"),
            "Body/Amount",
            "121.48 but the transactions' fees add up to 121.49",
        ),
        (
            edited(
                "<ClearTargetDate>2026-11-30</ClearTargetDate>",
                "<ClearTargetDate>20261130</ClearTargetDate>",
            ),
            "Body/ClearTargetDate",
            "expected a date like 2026-12-01, got '20261130'",
        ),
        (
            edited("<IssuerId>320102</IssuerId>", "<IssuerId></IssuerId>"),
            "Body/IssuerId",
            "expected 1-32 letters or digits, got ''",
        ),
        (
            edited("<Version>00020000</Version>", "<Version>00030000</Version>"),
            "Header/Version",
            "expected 00010000 or 00020000, got '00030000'",
        ),
        (
            edited("<MessageClass>5</MessageClass>", "<MessageClass>4</MessageClass>"),
            "Header/MessageClass",
            "expected 5 or 6, got 4",
        ),
        (
            edited("<MessageType>7</MessageType>", "<MessageType>6</MessageType>"),
            "Header/MessageType",
            "expected 5 or 7, got 6",
        ),
        (
            edited("<ContentType>1</ContentType>", "<ContentType>2</ContentType>"),
            "Body/ContentType",
            "expected 1 for MessageType 7, got 2",
        ),
        (
            edited("<SenderId>0000000000003201</SenderId>", "<SenderId>3201</SenderId>"),
            "Header/SenderId",
            "expected 16 hex digits (0-9, A-F), got '3201'",
        ),
        (
            edited("<MessageId>41</MessageId>", "<MessageId>0</MessageId>"),
            "Header/MessageId",
            "expected 1 to 9223372036854775807, got 0",
        ),
        (
            edited("<Header>", "<Head>").replace(b"</Header>", b"</Head>"),
            "Head",
            "unknown element",
        ),
        (
            edited("<Result>9</Result>", "<Result>18</Result>", xml=ACCOUNTING_XML),
            "Body/DisputedRecord[1]/Result",
            f"expected one of {', '.join(map(str, [*range(1, 18), 100]))}, got 18",
        ),
        (
            edited(
                "<DisputedCount>1</DisputedCount>",
                "<DisputedCount>0</DisputedCount>",
                xml=ACCOUNTING_XML,
            ),
            "Body/DisputedCount",
            "says 0, but there are 1 DisputedRecord elements",
        ),
        (
            edited("<Count>1</Count>", "<Count>1</Count><Transaction/>", xml=ACCOUNTING_XML),
            "Body/Transaction",
            "unknown element",
        ),
        (
            edited("<FileCount>1</FileCount>", "<FileCount>2</FileCount>", xml=SUMMARY_XML),
            "Body/List[1]/FileCount",
            "says 2, but there are 1 FileId elements",
        ),
        (
            edited("<MessageId>17</MessageId>", "<MessageId>-17</MessageId>", xml=SUMMARY_XML),
            "Body/List[2]/MessageId[1]",
            "expected 1 to 9223372036854775807, got -17",
        ),
        (
            edited("<ProcessTime>2026-12-01T04:00:00+08:00</ProcessTime>", "", xml=SUMMARY_XML),
            "Body/ProcessTime",
            "required",
        ),
        (
            edited("<Result>1</Result>", "<Result>9</Result>", xml=RESPONSE_XML),
            "Body/Result",
            "expected one of 1, 2, 3, 4, 5, 6, 7, 8, got 9",
        ),
        (
            b"<Message><Header>",
            "document",
            "not well-formed XML: no element found: line 1, column 17",
        ),
        (
            b"<?xml version='1.0' encoding='GBK'?><Message/>",
            "document",
            "expected UTF-8, declared 'GBK'",
        ),
        (
            "<Message>苏</Message>".encode("gbk"),
            "document",
            "not UTF-8 (invalid continuation byte at byte 9)",
        ),
    ],
)
def test_each_bad_document_is_refused_naming_its_field(data, field, message):
    with pytest.raises(PackageError) as refused:
        read(data)

    assert (refused.value.field, refused.value.message) == (field, message)
    assert str(refused.value) == f"{field}: {message}"
    assert read(PACKAGE_XML.encode()) == package()  # the next good document still reads


@pytest.mark.parametrize(
    ("message", "field", "text"),
    [
        (
            package(transaction(card=dataclasses.replace(transaction().card, card_id="1234"))),
            "Body/Transaction[1]/ICCard/CardId",
            "expected 16-20 digits, got '1234'",
        ),
        (
            package(transaction(time=dt.datetime(2026, 11, 30, 8, 12, 5))),
            "Body/Transaction[1]/Time",
            "expected a time with its UTC offset, got 2026-11-30T08:12:05",
        ),
        (
            package(transaction(time=dt.datetime(2026, 11, 30, 8, 12, 5, 500, tzinfo=CHINA))),
            "Body/Transaction[1]/Time",
            "expected whole seconds, got 2026-11-30T08:12:05.000500+08:00",
        ),
        (
            package(
                transaction(
                    customized=dataclasses.replace(transaction().customized, intervals=("G1 G2",))
                )
            ),
            "Body/Transaction[1]/CustomizedData/Intervals",
            "expected 1-32 characters without spaces, got 'G1 G2'",
        ),
        (
            package(transaction(service=Service(1, "通行费\x00", ""))),
            "Body/Transaction[1]/Service/Description",
            "expected text of at most 255 characters, got '通行费\\x00'",
        ),
        (
            dataclasses.replace(package(), transactions=(transaction(), transaction())),
            "Body/Transaction[1]/TransId",
            "expected 1 to 2, got 0",
        ),
        (
            dataclasses.replace(package(), transactions=()),
            "Body/Transaction",
            "a package holds 1 to 10,000 transactions, got 0",
        ),
        (
            dataclasses.replace(package(), header=Header(PROVINCE, CENTER, 41, "1.0")),
            "Header/Version",
            "expected 00010000 or 00020000, got '1.0'",
        ),
        (
            dataclasses.replace(
                accounting_result(),
                disputed=(
                    DisputedRecord(2, DisputeResult.OTHER),
                    DisputedRecord(2, DisputeResult.TEST),
                ),
            ),
            "Body/DisputedRecord[2]/TransId",
            "2 appears twice",
        ),
        (
            dataclasses.replace(accounting_result(), amount_fen=-1),
            "Body/Amount",
            "expected 0.00 to 92233720368547758.07 yuan, got -1",
        ),
        (
            dataclasses.replace(clearing_summary(), lists=(ClearingList("320101", (0,), ()),)),
            "Body/List[1]/MessageId[1]",
            "expected 1 to 9223372036854775807, got 0",
        ),
        (
            Response(Header(CENTER, PROVINCE, 41), 7, 2, ResponseResult.RECEIVED),
            "Body/ContentType",
            "expected 1 for MessageType 7, got 2",
        ),
    ],
)
def test_each_bad_message_is_refused_before_anything_is_written(message, field, text):
    with pytest.raises(PackageError) as refused:
        write(message)

    assert (refused.value.field, refused.value.message) == (field, text)


# --- XML bombs and oversize documents -----------------------------------------------------

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Message [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Message>&lol3;</Message>
"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE Message [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Message>&secret;</Message>
"""


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(LAUGHS, id="billion laughs"),
        pytest.param(EXTERNAL, id="external entity"),
        pytest.param(
            b"<!doctype Message>" + PACKAGE_XML.encode().split(b"?>", 1)[1], id="lower case"
        ),
        pytest.param(PACKAGE_XML.replace("<Body>", "<Body><!ENTITY x 'y'>").encode(), id="entity"),
    ],
)
def test_a_document_with_a_doctype_or_entity_declaration_is_refused(data):
    with pytest.raises(PackageError) as refused:
        read(data)

    assert str(refused.value) == "document: a DOCTYPE or ENTITY declaration is not allowed"


def test_a_doctype_in_utf16_is_refused_too():
    with pytest.raises(PackageError) as refused:
        read(
            LAUGHS.decode()
            .replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
            .encode("utf-16")
        )

    assert str(refused.value) == "document: expected UTF-8: the document has NUL bytes"


def test_a_document_over_the_size_limit_is_refused_before_it_is_parsed(monkeypatch):
    data = write(package())
    monkeypatch.setattr(packages, "MAX_BYTES", len(data) - 1)

    with pytest.raises(PackageError) as refused:
        read(data)

    assert str(refused.value) == f"document: {len(data):,} bytes; at most {len(data) - 1:,}"
    monkeypatch.setattr(packages, "MAX_BYTES", len(data))
    assert read(data) == package()


def test_the_size_limit_is_64_mib():
    assert packages.MAX_BYTES == 64 * 1024 * 1024


# --- At most 10,000 transactions a package ------------------------------------------------


def day_of(count: int) -> list[Transaction]:
    base = transaction()
    return [
        dataclasses.replace(
            base, customized=dataclasses.replace(base.customized, source_id=1_000_000 + n)
        )
        for n in range(count)
    ]


def test_a_package_of_10000_transactions_is_written_and_read_back():
    made = package(*day_of(MAX_TRANSACTIONS))

    again = read(write(made))

    assert again == made
    assert (again.count, again.amount_fen) == (10_000, 10_000 * 7149)


def test_10001_transactions_are_refused_on_writing_and_on_reading():
    made = package(*day_of(MAX_TRANSACTIONS))
    over = dataclasses.replace(
        made, transactions=(*made.transactions, transaction(trans_id=MAX_TRANSACTIONS + 1))
    )
    data = write(made)
    line = re.search(rb"    <Transaction>.*\n", data)
    assert line is not None
    data_over = data.replace(b"  </Body>", line.group(0) + b"  </Body>")

    with pytest.raises(PackageError) as on_writing:
        write(over)
    with pytest.raises(PackageError) as on_reading:
        read(data_over)

    assert str(on_writing.value) == (
        "Body/Transaction: a package holds 1 to 10,000 transactions, got 10,001"
    )
    assert str(on_reading.value) == (
        "Body/Transaction: 10,001 transactions; a package holds at most 10,000"
    )


def test_a_day_is_cut_into_packages_of_at_most_10000_with_message_ids_one_apart():
    day = day_of(25_001)

    made = list(
        build_packages(
            day,
            clear_target_date=DAY,
            service_provider_id="320101",
            issuer_id="320102",
            sender_id=PROVINCE,
            receiver_id=CENTER,
            first_message_id=41,
        )
    )

    assert [p.count for p in made] == [10_000, 10_000, 5_001]
    assert [(p.header.message_id, p.message_id) for p in made] == [(41, 41), (42, 42), (43, 43)]
    for made_package in made:
        assert [t.trans_id for t in made_package.transactions] == list(
            range(1, made_package.count + 1)
        )
    assert [t.customized.source_id for p in made for t in p.transactions] == [
        t.customized.source_id for t in day
    ]
    assert sum(p.amount_fen for p in made) == 25_001 * 7149


def test_a_smaller_size_cuts_smaller_packages_and_an_empty_day_makes_none():
    made = build_packages(
        day_of(7),
        clear_target_date=DAY,
        service_provider_id="320101",
        issuer_id="320102",
        sender_id=PROVINCE,
        receiver_id=CENTER,
        first_message_id=1,
        size=3,
    )

    assert [(p.message_id, p.count) for p in made] == [(1, 3), (2, 3), (3, 1)]
    assert list(chunk(range(7), 3)) == [(0, 1, 2), (3, 4, 5), (6,)]
    assert list(chunk([])) == []


@pytest.mark.parametrize(
    ("size", "first", "text"),
    [
        (0, 1, "size: expected 1 to 10000, got 0"),
        (10_001, 1, "size: expected 1 to 10000, got 10001"),
        (10, 0, "first_message_id: expected 1 or more, got 0"),
    ],
)
def test_a_size_beyond_the_limit_or_a_message_id_below_one_is_refused(size, first, text):
    with pytest.raises(PackageError) as refused:
        build_packages(
            day_of(3),
            clear_target_date=DAY,
            service_provider_id="320101",
            issuer_id="320102",
            sender_id=PROVINCE,
            receiver_id=CENTER,
            first_message_id=first,
            size=size,
        )

    assert str(refused.value) == text
