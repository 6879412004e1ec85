"""Writing a network as a bundle folder that reads back to an equal network."""

from __future__ import annotations

import csv
from pathlib import Path

from etcnet.network.bundle.model import (
    BUNDLE_FILES,
    Network,
)


def write_bundle(network: Network, path: str | Path) -> None:
    """Write ``network`` as a bundle into folder ``path`` (created if needed).

    Rows are sorted by id (fees by id then class), so the same network always gives
    the same bytes; open_stations.csv is written only when there are open-road fees
    (an old one in the folder is removed, so the folder reads back to ``network``)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tables: dict[str, list[tuple[str | int, ...]]] = {
        "owners.csv": [(o.owner_id, o.name) for _, o in sorted(network.owners.items())],
        "nodes.csv": [
            (n.node_id, n.name, n.kind, n.hex, n.network) for _, n in sorted(network.nodes.items())
        ],
        "intervals.csv": [
            (i.interval_id, i.from_node, i.to_node, i.length_m, i.owner_id, i.gantry_id)
            for _, i in sorted(network.intervals.items())
        ],
        "interval_fees.csv": [(k, c, fen) for (k, c), fen in sorted(network.fees.items())],
    }
    if network.open_fees:
        tables["open_stations.csv"] = [
            (k, c, fen) for (k, c), fen in sorted(network.open_fees.items())
        ]
    else:
        (folder / "open_stations.csv").unlink(missing_ok=True)
    for file, rows in tables.items():
        with (folder / file).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            # A bare CR would end the row for a reader; the minimal quoting only looks
            # for the "\n" terminator, so such a row is written fully quoted.
            quoted = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
            writer.writerow(BUNDLE_FILES[file])
            for row in rows:
                if any(isinstance(value, str) and "\r" in value for value in row):
                    quoted.writerow(row)
                else:
                    writer.writerow(row)
