"""The clearing day's set-based steps, each one SQL text that DuckDB and Spark SQL
both run unchanged (no engine-specific functions: `CAST`, `ABS`, `%`, `SUM`,
`ROW_NUMBER() OVER`), over named input relations.

Pricing the routes — `UNPRICED` and `TRIP_INTERVALS`:
  inputs  `trips(trip_id, payable_fen, tariff_version, vehicle_class)` (the
          tariff version the lane charged by), `trip_routes(trip_id, position,
          interval_id)` (each trip's toll intervals in driving order) and
          `interval_fees(tariff_version, interval_id, owner_id, vehicle_class,
          fee_fen)` (every tariff version's intervals with their owners and fees);
  `UNPRICED`  the route rows the tariff has no fee for (`trip_id, position,
          interval_id`): an interval unknown to the version, or no fee for the
          class — those trips are held, never split among the intervals that
          are priced;
  `TRIP_INTERVALS`  every route row of the other trips with its owner and fee:
          `SPLIT`'s `trip_intervals`.

Splitting (拆分) — `SPLIT`:
  inputs  `trips(trip_id, payable_fen, …)` and
          `trip_intervals(trip_id, position, interval_id, owner_id, fee_fen)`,
          the toll intervals of each trip in driving order (`position` from 0)
          with the fee the tariff gives each for the trip's vehicle class;
  output  one row per trip interval: `trip_id, position, interval_id, owner_id,
          fee_fen, amount_fen` — the part of the trip's payable amount that goes
          to the interval's road owner.

The rule is `etcnet.core.money.split_largest_remainder` with the intervals' fees
as weights: each part is its exact share of the payable amount rounded down, and
the fen left over go one each to the parts with the largest remainders (ties to
the earlier interval). So the fee is split by interval and the discount in
proportion to it, and the parts add up to the payable amount exactly. A negative
amount (a reversal) splits as the mirror image of its absolute value. A trip
whose intervals all have a zero fee splits equally (every weight 1). A trip
with no interval rows gets no split: the day's check (Σ splits = Σ payable)
names it.

The day's check and totals — `UNSPLIT` and `OWNER_TOTALS`, over `trips`, the
pricing inputs and `splits` (`SPLIT`'s result):
  `UNSPLIT`  every trip that is not held (`UNPRICED`) whose splits do not add up
          to its payable amount (`trip_id, payable_fen, split_fen`): empty on
          every run, or the run stops — a trip with no route rows shows here;
  `OWNER_TOTALS`  per road owner: trips, the fee of its intervals and the amount
          it is due (`owner_id, trips, fee_fen, amount_fen`).

Integer arithmetic only: `a * w - (a * w) % W` is an exact multiple of `W`, so
its division is exact in both engines' division (which returns a double) for
every amount below 2^53 — fen amounts times fen fees are far below it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "FEE_COLUMNS",
    "INTERVAL_COLUMNS",
    "OWNER_TOTALS",
    "ROUTE_COLUMNS",
    "SPLIT",
    "TRIP_COLUMNS",
    "TRIP_INTERVALS",
    "UNPRICED",
    "UNSPLIT",
    "ddl",
]

# The input relations' columns, in types both engines name alike (DuckDB takes
# INT and STRING for INTEGER and VARCHAR).
Columns = Sequence[tuple[str, str]]
TRIP_COLUMNS: Columns = (
    ("trip_id", "BIGINT"),
    ("payable_fen", "BIGINT"),
    ("tariff_version", "STRING"),
    ("vehicle_class", "INT"),
)
ROUTE_COLUMNS: Columns = (("trip_id", "BIGINT"), ("position", "INT"), ("interval_id", "STRING"))
FEE_COLUMNS: Columns = (
    ("tariff_version", "STRING"),
    ("interval_id", "STRING"),
    ("owner_id", "STRING"),
    ("vehicle_class", "INT"),
    ("fee_fen", "BIGINT"),
)
INTERVAL_COLUMNS: Columns = (
    ("trip_id", "BIGINT"),
    ("position", "INT"),
    ("interval_id", "STRING"),
    ("owner_id", "STRING"),
    ("fee_fen", "BIGINT"),
)


def ddl(columns: Columns) -> str:
    """`name TYPE, …`: a table's columns as both engines' DDL writes them."""
    return ", ".join(f"{name} {kind}" for name, kind in columns)


UNPRICED = """
SELECT r.trip_id, r.position, r.interval_id
FROM trip_routes r
JOIN trips t ON t.trip_id = r.trip_id
LEFT JOIN interval_fees f
    ON f.tariff_version = t.tariff_version
    AND f.interval_id = r.interval_id
    AND f.vehicle_class = t.vehicle_class
WHERE f.interval_id IS NULL
"""

TRIP_INTERVALS = f"""
SELECT r.trip_id, r.position, r.interval_id, f.owner_id, f.fee_fen
FROM trip_routes r
JOIN trips t ON t.trip_id = r.trip_id
JOIN interval_fees f
    ON f.tariff_version = t.tariff_version
    AND f.interval_id = r.interval_id
    AND f.vehicle_class = t.vehicle_class
WHERE NOT EXISTS (SELECT 1 FROM ({UNPRICED}) u WHERE u.trip_id = r.trip_id)
"""

SPLIT = """
WITH totals AS (
    SELECT trip_id, SUM(fee_fen) AS fee_total, COUNT(*) AS intervals
    FROM trip_intervals
    GROUP BY trip_id
),
weighted AS (
    SELECT
        i.trip_id, i.position, i.interval_id, i.owner_id, i.fee_fen,
        CASE WHEN t.payable_fen < 0 THEN -1 ELSE 1 END AS sign,
        ABS(t.payable_fen) AS amount,
        CASE WHEN s.fee_total > 0 THEN i.fee_fen ELSE 1 END AS weight,
        CASE WHEN s.fee_total > 0 THEN s.fee_total ELSE s.intervals END AS weight_total
    FROM trip_intervals i
    JOIN trips t ON t.trip_id = i.trip_id
    JOIN totals s ON s.trip_id = i.trip_id
),
shares AS (
    SELECT
        w.*,
        CAST(
            (w.amount * w.weight - (w.amount * w.weight) % w.weight_total) / w.weight_total
            AS BIGINT
        ) AS base,
        (w.amount * w.weight) % w.weight_total AS remainder
    FROM weighted w
),
ranked AS (
    SELECT
        s.*,
        s.amount - SUM(s.base) OVER (PARTITION BY s.trip_id) AS left_over,
        ROW_NUMBER() OVER (
            PARTITION BY s.trip_id ORDER BY s.remainder DESC, s.position
        ) AS turn
    FROM shares s
)
SELECT
    trip_id, position, interval_id, owner_id, fee_fen,
    CAST(sign * (base + CASE WHEN turn <= left_over THEN 1 ELSE 0 END) AS BIGINT)
        AS amount_fen
FROM ranked
"""

UNSPLIT = f"""
SELECT t.trip_id, t.payable_fen, COALESCE(s.split_fen, 0) AS split_fen
FROM trips t
LEFT JOIN (SELECT trip_id, SUM(amount_fen) AS split_fen FROM splits GROUP BY trip_id) s
    ON s.trip_id = t.trip_id
WHERE COALESCE(s.split_fen, 0) <> t.payable_fen
  AND NOT EXISTS (SELECT 1 FROM ({UNPRICED}) u WHERE u.trip_id = t.trip_id)
"""

OWNER_TOTALS = """
SELECT
    owner_id,
    COUNT(DISTINCT trip_id) AS trips,
    SUM(fee_fen) AS fee_fen,
    SUM(amount_fen) AS amount_fen
FROM splits
GROUP BY owner_id
"""
