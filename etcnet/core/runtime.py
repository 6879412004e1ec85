"""How a long-running center process keeps its heap.

Django, the URL maps, the settings, the fee network and every imported module are
loaded once when a process starts and stay until it ends. Python's cyclic
collector would still walk all of them at each full collection (about 0.1 s in
a center process, stalling whichever upload is running then). ``settle()``
moves what start-up loaded out of the collector's sight (``gc.freeze``), so a
full collection looks only at what requests allocate.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collects once, then freezes everything that survived (start-up's objects);
    returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
