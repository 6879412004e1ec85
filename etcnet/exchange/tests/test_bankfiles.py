"""The bank files and the key wrapping, without a database (etcnet.exchange.bankfiles)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcnet.exchange import bankfiles

DAY = dt.date(2026, 12, 2)
US, BANK = "0000000000006101", "0000000000000102"


def debit(*lines: tuple[str, str, int, int]) -> bytes:
    return bankfiles.write(
        "DEBIT", file_id="DEBIT_1", sender=US, receiver=BANK, date=DAY,
        records=[("D", *line) for line in lines],
    )  # fmt: skip


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[0-9A-Z]{1,20}", fullmatch=True),
            st.from_regex(r"[0-9]{16}", fullmatch=True),
            st.integers(-(10**12), 10**12).filter(bool),
            st.integers(1, 10**6),
        ),
        max_size=30,
    )
)
def test_a_debit_file_reads_back_as_written(lines):
    read = bankfiles.read(debit(*lines))
    assert (read.header.kind, read.header.count, read.header.total_fen) == (
        "DEBIT", len(lines), sum(amount for _, _, amount, _ in lines),
    )  # fmt: skip
    assert [
        (r["account"], r["bank_account"], r["amount_fen"], r["trips"]) for r in read.records
    ] == lines


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ((b"|7149|1\n", b"|71.49|1\n"), "line 3, amount_fen: not an integer: '71.49'"),
        ((b"|7149|1\n", b"|0|1\n"), "line 3, amount_fen: zero fen: '0'"),
        ((b"D|2|", b"D|3|"), "line 3, number: expected 2"),
        ((b"|2|17673", b"|3|17673"), "line 1, count: says 3, the file has 2"),
        ((b"|2|17673", b"|2|17674"), "line 1, total_fen: says 17674, the lines sum to 17673"),
        ((b"etcnet-bank/1", b"etcnet-bank/2"), "line 1, format: expected etcnet-bank/1"),
        ((b"|10524|1\n", b"|10524\n"), "line 2, fields: 6 fields, found 5"),
        ((b"A0001", b"A 001"), "line 2, account: 1-32 letters, digits or '-': 'A 001'"),
    ],
)
def test_a_malformed_file_names_its_line_and_field(change, error):
    good = debit(("A0001", "6222000000000001", 10524, 1), ("A0002", "6222000000000002", 7149, 1))
    bad = good.replace(*change)
    assert bad != good
    with pytest.raises(bankfiles.BankFileError) as refused:
        bankfiles.read(bad)
    assert str(refused.value) == error


def test_a_file_cut_short_or_not_utf8_is_refused():
    good = debit(("A0001", "6222000000000001", 10524, 1))
    with pytest.raises(bankfiles.BankFileError, match="cut short"):
        bankfiles.read(good[:-3])
    with pytest.raises(bankfiles.BankFileError, match="line 2, encoding: not UTF-8"):
        bankfiles.read(good.replace(b"A0001", b"A\xff001"))


def test_a_key_wraps_and_unwraps_with_its_check_value():
    # GB/T 32907 Appendix A: SM4(0123…3210, 0123…3210) = 681EDF34…
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert bankfiles.wrap_key(key, key).hex().upper() == "681EDF34D206965E86B3E94F536E4246"
    transport = bankfiles.new_key()
    assert bankfiles.unwrap_key(transport, bankfiles.wrap_key(transport, key)) == key
    assert len(bankfiles.kcv(key)) == 6
    with pytest.raises(ValueError, match="24 bytes, expected 16"):
        bankfiles.unwrap_key(transport, bytes(24))
