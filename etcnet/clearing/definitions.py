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


# -- the clearing day ------------------------------------------------------------
#
# The whole day as one pipeline of named steps (`DAY`), each a SQL text over the
# inputs and the steps before it; an engine runs them in order, each result
# registered under its name. Inputs:
#   `records` (RECORD_COLUMNS): every record the run takes — the day's own
#       (`carried` 0), late ones of closed days (1, adjustments) and entries held
#       or sent before that are now to be paid (2: resolved, or accepted by their
#       issuer): checked again only when 0 or 1;
#   `trip_routes`, `interval_fees` as for pricing;
#   `params` (PARAM_COLUMNS): one row, the run's limits.

#: Payment types (reference §6.3 payWay) by who pays the center for the trip.
STORED_VALUE, DEBIT = 22, 23
MOBILE_PAYMENTS = (10, 11)

RECORD_COLUMNS: Columns = (
    ("trip_id", "BIGINT"),
    ("carried", "INT"),
    ("flow", "INT"),  # 1 ours or paid at the lane, 2 another issuer's card, 3 ours elsewhere
    ("station_id", "STRING"),
    ("terminal_id", "STRING"),
    ("card_network", "STRING"),
    ("card_no", "STRING"),
    ("card_trans_no", "BIGINT"),
    ("payment_type", "INT"),
    ("vehicle_class", "INT"),
    ("tariff_version", "STRING"),
    ("fee_fen", "BIGINT"),
    ("discount_fen", "BIGINT"),
    ("payable_fen", "BIGINT"),
    ("dispute_code", "INT"),  # what the intake found (or the dispute it was held for)
    ("clock_offset_ms", "BIGINT"),
    ("exit_date", "STRING"),  # YYYY-MM-DD, Asia/Shanghai
    ("expiry_date", "STRING"),  # our card's expiry (YYYY-MM-DD) or empty
    ("seen_before", "INT"),  # 1: a cleared record already carried this card debit
    ("bank", "STRING"),  # the bank of our debit card's account
    ("exit_time", "STRING"),  # as the store keeps it, passed through to the entry
)
PARAM_COLUMNS: Columns = (("clock_limit_ms", "BIGINT"),)

#: Each record's verdict: `hold_code` (a §6.2 code, first found wins) and
#: `state` — `held` (遗留, until its dispute is resolved), `sent` (another
#: issuer's card: cleared through the national center, paid once accepted) or
#: `cleared` (split today). Records carried in (2) were checked when they came;
#: one whose route cannot be split (its tariff changed meanwhile) is held again.
CHECKED = f"""
WITH marked AS (
    SELECT
        r.*,
        CASE WHEN r.card_no <> '' AND r.card_trans_no IS NOT NULL
                  AND r.payment_type IN ({STORED_VALUE}, {DEBIT})
             THEN ROW_NUMBER() OVER (
                 PARTITION BY r.card_no, r.card_trans_no,
                     CASE WHEN r.card_no <> '' AND r.card_trans_no IS NOT NULL
                               AND r.payment_type IN ({STORED_VALUE}, {DEBIT})
                          THEN 1 ELSE 0 END
                 ORDER BY r.trip_id)
             ELSE 1 END AS copy,
        CASE WHEN u.trip_id IS NOT NULL THEN 1
             WHEN r.payable_fen <> 0 AND g.trip_id IS NULL THEN 1
             ELSE 0 END AS unsplittable
    FROM records r
    LEFT JOIN (SELECT DISTINCT trip_id FROM unpriced) u ON u.trip_id = r.trip_id
    LEFT JOIN (SELECT DISTINCT trip_id FROM trip_routes) g ON g.trip_id = r.trip_id
),
coded AS (
    SELECT
        m.*,
        CASE
            WHEN m.carried = 2 AND m.unsplittable = 0 THEN CAST(NULL AS INT)
            WHEN m.carried = 2 THEN 6
            WHEN m.dispute_code IS NOT NULL THEN m.dispute_code
            WHEN m.copy > 1 OR m.seen_before = 1 THEN 2
            WHEN ABS(m.clock_offset_ms) > (SELECT clock_limit_ms FROM params) THEN 16
            WHEN m.expiry_date <> '' AND m.expiry_date < m.exit_date THEN 10
            WHEN m.unsplittable = 1 THEN 6
        END AS hold_code
    FROM marked m
)
SELECT
    c.trip_id, c.carried, c.flow, c.station_id, c.terminal_id, c.card_network,
    c.payment_type, c.vehicle_class, c.tariff_version,
    c.fee_fen, c.discount_fen, c.payable_fen, c.bank, c.exit_time, c.hold_code,
    CASE WHEN c.hold_code IS NOT NULL THEN 'held'
         WHEN c.flow = 2 AND c.carried <> 2 THEN 'sent'
         ELSE 'cleared' END AS state
FROM coded c
"""

#: The route rows of the trips cleared today, priced (`SPLIT`'s input).
CLEARED_INTERVALS = """
SELECT r.trip_id, r.position, r.interval_id, f.owner_id, f.fee_fen
FROM trip_routes r
JOIN checked c ON c.trip_id = r.trip_id AND c.state = 'cleared'
JOIN interval_fees f
    ON f.tariff_version = c.tariff_version
    AND f.interval_id = r.interval_id
    AND f.vehicle_class = c.vehicle_class
"""

#: The day's check: every cleared trip whose splits do not add up to its payable
#: amount. Empty on every run, or the run stops and nothing is written.
MISSPLIT = """
SELECT c.trip_id, c.payable_fen, COALESCE(s.split_fen, 0) AS split_fen
FROM checked c
LEFT JOIN (SELECT trip_id, SUM(amount_fen) AS split_fen FROM splits GROUP BY trip_id) s
    ON s.trip_id = c.trip_id
WHERE c.state = 'cleared' AND COALESCE(s.split_fen, 0) <> c.payable_fen
"""

#: The day's figures for the reports: records by station, issuer (network),
#: payment type, class, debit card's bank, flow, state, the code held for and
#: whether late or carried in.
FIGURES = """
SELECT
    station_id, card_network, payment_type, vehicle_class, bank, flow, state,
    COALESCE(hold_code, 0) AS hold_code, carried,
    COUNT(*) AS trips, SUM(fee_fen) AS fee_fen, SUM(discount_fen) AS discount_fen,
    SUM(payable_fen) AS payable_fen
FROM checked
GROUP BY station_id, card_network, payment_type, vehicle_class, bank, flow, state,
    COALESCE(hold_code, 0), carried
"""

#: Each road owner's share of the day by exit station, payment type and class:
#: the fee of its intervals, what it is due (its split) and so its discount.
SHARES = """
SELECT
    s.owner_id, c.station_id, c.payment_type, c.vehicle_class, c.flow,
    COUNT(DISTINCT s.trip_id) AS trips, SUM(s.fee_fen) AS fee_fen,
    SUM(s.amount_fen) AS amount_fen
FROM splits s
JOIN checked c ON c.trip_id = s.trip_id
GROUP BY s.owner_id, c.station_id, c.payment_type, c.vehicle_class, c.flow
"""

#: Who pays the center for a cleared trip: (kind, id) of the counterparty and
#: the ledger account the money waits in.
_PAYER = f"""
SELECT
    trip_id, payable_fen, terminal_id, station_id,
    CASE WHEN flow = 2 THEN 'national_center'
         WHEN payment_type = {STORED_VALUE} THEN 'purses'
         WHEN payment_type = {DEBIT} THEN 'bank'
         WHEN payment_type IN ({MOBILE_PAYMENTS[0]}, {MOBILE_PAYMENTS[1]}) THEN 'mobile'
         ELSE 'station_cash' END AS kind,
    CASE WHEN flow = 2 THEN ''
         WHEN payment_type = {STORED_VALUE} THEN ''
         WHEN payment_type = {DEBIT} THEN bank
         WHEN payment_type IN ({MOBILE_PAYMENTS[0]}, {MOBILE_PAYMENTS[1]})
             THEN CAST(payment_type AS STRING)
         ELSE station_id END AS counterparty_id,
    CASE WHEN flow = 2 THEN 'national_receivable'
         WHEN payment_type IN ({STORED_VALUE}, {DEBIT}) THEN CONCAT('tolls_payable:', terminal_id)
         WHEN payment_type IN ({MOBILE_PAYMENTS[0]}, {MOBILE_PAYMENTS[1]}) THEN 'mobile_payment'
         ELSE CONCAT('lane_cash:', station_id) END AS account
FROM checked
WHERE state = 'cleared' AND payable_fen <> 0
"""

#: The settlement positions of the day, one row per counterparty: what it owes
#: the center (`receivable_fen`), what the center owes it (`payable_fen`) and the
#: net (receivable − payable). Road owners are owed their splits; each trip's
#: payer owes its payable amount. The nets add up to zero.
POSITIONS = f"""
WITH moves AS (
    SELECT kind, counterparty_id, payable_fen AS receivable_fen, 0 AS payable_fen
    FROM ({_PAYER}) p
    UNION ALL
    SELECT 'owner' AS kind, owner_id AS counterparty_id, 0 AS receivable_fen,
        amount_fen AS payable_fen
    FROM splits
)
SELECT
    kind, counterparty_id,
    CAST(SUM(receivable_fen) AS BIGINT) AS receivable_fen,
    CAST(SUM(payable_fen) AS BIGINT) AS payable_fen,
    CAST(SUM(receivable_fen) - SUM(payable_fen) AS BIGINT) AS net_fen
FROM moves
GROUP BY kind, counterparty_id
"""

#: The day's journal entry, one line per ledger account (debit positive): the
#: money each payer's account held for the trips leaves it, each road owner's
#: payable account takes its splits. Balanced because the splits add up.
POSTINGS = f"""
WITH lines AS (
    SELECT account, payable_fen AS amount_fen FROM ({_PAYER}) p
    UNION ALL
    SELECT CONCAT('owner_payable:', owner_id) AS account, -amount_fen AS amount_fen
    FROM splits
)
SELECT account, CAST(SUM(amount_fen) AS BIGINT) AS amount_fen
FROM lines
GROUP BY account
HAVING SUM(amount_fen) <> 0
"""

#: The clearing day in order: (name, SQL). Each engine registers every result
#: under its name. `trips` is every record as pricing reads it; `SPLIT` splits
#: only the cleared ones, as `trip_intervals` holds only their routes.
DAY: tuple[tuple[str, str], ...] = (
    ("trips", "SELECT trip_id, payable_fen, tariff_version, vehicle_class FROM records"),
    ("unpriced", UNPRICED),
    ("checked", CHECKED),
    ("trip_intervals", CLEARED_INTERVALS),
    ("splits", SPLIT),
    ("missplit", MISSPLIT),
    ("figures", FIGURES),
    ("shares", SHARES),
    ("positions", POSITIONS),
    ("postings", POSTINGS),
)
#: What a run takes back from the engine (the rest are steps on the way).
RESULTS = ("checked", "missplit", "figures", "shares", "positions", "postings")
