from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from etcnet.clearing import cluster


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One Spark session in local mode for the clearing tests of this worker (the
    modules that use it share the `spark` xdist group)."""
    session = cluster.local_session()
    try:
        yield session
    finally:
        session.stop()
