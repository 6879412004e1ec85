"""The network bundle: a folder of UTF-8 CSV files describing a road network and its tariff.

```
owners.csv         owner_id,name
nodes.csv          node_id,name,kind,hex,network          kind: station|junction|border
intervals.csv      interval_id,from_node,to_node,length_m,owner_id,gantry_id
interval_fees.csv  interval_id,vehicle_class,fee_fen
open_stations.csv  node_id,vehicle_class,fee_fen          (optional)
```

Intervals (收费单元) are directed: a two-way road has two rows. ``read_bundle`` reports
*every* problem it finds as a ``Problem`` (file, 1-based line including the header,
column, stable code, English message) inside one ``BundleError``; nothing is returned
from a bundle with a problem. ``validate`` holds the graph-level checks, so a network
built from the database can be checked the same way. ``write_bundle`` writes a bundle
that reads back to an equal ``Network``. Codes and rules: ``docs/network.md``.

Pure Python: no Django here (an import-linter contract forbids it). The package:
``model`` (the dataclasses, ``Problem``, ``BundleError``), ``validation``, ``reader``,
``writer``.
"""

from __future__ import annotations

from etcnet.network.bundle.model import (
    BUNDLE_FILES,
    NODE_KINDS,
    OPTIONAL_FILES,
    BundleError,
    Interval,
    Network,
    Node,
    Owner,
    Problem,
)
from etcnet.network.bundle.reader import read_bundle
from etcnet.network.bundle.validation import reachable_from, structure_graph, validate
from etcnet.network.bundle.writer import write_bundle

__all__ = [
    "BUNDLE_FILES",
    "NODE_KINDS",
    "OPTIONAL_FILES",
    "BundleError",
    "Interval",
    "Network",
    "Node",
    "Owner",
    "Problem",
    "reachable_from",
    "read_bundle",
    "structure_graph",
    "validate",
    "write_bundle",
]
