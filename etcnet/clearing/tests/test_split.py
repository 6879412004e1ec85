"""Splitting a trip's payable amount among the road owners of its intervals,
run by the embedded engine (DuckDB) on the one SQL definition."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from etcnet.clearing import embedded
from etcnet.clearing.tests.days import VERSION, load_duckdb
from etcnet.core.money import split_largest_remainder

Trip = tuple[int, int, list[tuple[str, int]]]  # trip id, payable, (owner, fee) per interval


def run(trips: Sequence[Trip]) -> dict[int, list[tuple[str, int, int]]]:
    """Each trip's (owner, fee, amount) per interval, in driving order."""
    con = embedded.connect()
    with tempfile.TemporaryDirectory() as folder:
        load_duckdb(
            con,
            Path(folder),
            [(trip, payable, VERSION, 1) for trip, payable, _ in trips],
            [
                (trip, position, f"G{trip:06d}{position:02d}", owner, fee)
                for trip, _, intervals in trips
                for position, (owner, fee) in enumerate(intervals)
            ],
        )
    found: dict[int, list[tuple[str, int, int]]] = {}
    rows = embedded.split(con).order("trip_id, position").fetchall()
    for trip, _, _, owner, fee, amount in rows:
        found.setdefault(trip, []).append((owner, fee, amount))
    return found


def test_a_trip_over_three_owners_splits_its_discount_in_proportion_with_the_remainder():
    # A class-1 car pays 75.25 over three owners' intervals (30.00 + 25.00 + 20.25)
    # less the 5% ETC discount, 3.76: 71.49.
    # Exact shares of 7149: 2850.10, 2375.08, 1923.82 -> 2850 + 2375 + 1923 = 7148;
    # the one fen left goes to the largest remainder, the third owner's (0.82).
    (split,) = run([(1, 7149, [("A", 3000), ("B", 2500), ("C", 2025)])]).values()
    assert split == [("A", 3000, 2850), ("B", 2500, 2375), ("C", 2025, 1924)]
    # The discount each owner bears: 150 + 125 + 101 = 376.
    assert [fee - amount for _, fee, amount in split] == [150, 125, 101]


def test_a_tie_goes_to_the_earlier_interval_and_a_reversal_mirrors_the_trip():
    found = run(
        [
            (1, 101, [("A", 500), ("B", 500)]),  # 50.5 each: the first takes the fen
            (2, -101, [("A", 500), ("B", 500)]),  # the reversal takes it back alike
        ]
    )
    assert found[1] == [("A", 500, 51), ("B", 500, 50)]
    assert found[2] == [("A", 500, -51), ("B", 500, -50)]


def test_intervals_that_are_all_free_share_the_amount_equally():
    (split,) = run([(1, 100, [("A", 0), ("B", 0), ("C", 0)])]).values()
    assert [amount for _, _, amount in split] == [34, 33, 33]


def test_a_free_interval_gets_nothing_and_a_trip_without_intervals_no_split():
    found = run([(1, 1000, [("A", 0), ("B", 700)]), (2, 500, [])])
    assert found[1] == [("A", 0, 0), ("B", 700, 1000)]
    assert 2 not in found  # the day's check names it: its payable has no owner


trips = st.lists(
    st.tuples(
        st.integers(-2_000_000, 2_000_000),
        st.lists(
            st.tuples(st.sampled_from("ABCDE"), st.integers(0, 500_000)), min_size=1, max_size=12
        ),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(trips)
def test_every_trip_splits_as_the_largest_remainder_rule_and_adds_up(generated):
    day = [(n, payable, intervals) for n, (payable, intervals) in enumerate(generated)]
    found = run(day)
    for trip, payable, intervals in day:
        fees = [fee for _, fee in intervals]
        weights = fees if sum(fees) > 0 else [1] * len(fees)
        amounts = [amount for _, _, amount in found[trip]]
        assert amounts == split_largest_remainder(payable, weights)
        assert sum(amounts) == payable
