from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from etcnet.clearing import cluster

# The tolling fixtures: a terminal at the demo network's station, an issued card
# with 100.00 and the key vault they need; the bare lane terminal of the store's
# tests. (Imported here, they are the clearing tests' fixtures too.)
from etcnet.tolling.tests.conftest import (  # noqa: F401
    _vault,
    approved,
    card,
    stock,
    terminal,
    tianjin,
)
from etcnet.tolling.tests.test_partitions import lane_terminal  # noqa: F401


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One Spark session in local mode for the clearing tests of this worker (the
    modules that use it share the `spark` xdist group)."""
    session = cluster.local_session()
    try:
        yield session
    finally:
        session.stop()
