"""The center process keeps what start-up loaded out of the collector's way."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from etcnet.core import runtime


def test_settle_freezes_what_is_alive_and_leaves_new_objects_to_the_collector():
    before = [["loaded at start-up"]]
    try:
        frozen = runtime.settle()
        assert frozen > 0
        later = [["made by a request"]]
        # The collector's generations hold what came after, not what was frozen.
        seen = {id(obj) for obj in gc.get_objects()}
        assert {id(later), id(later[0])} <= seen
        assert not {id(before), id(before[0])} & seen
        assert gc.get_freeze_count() <= frozen  # frozen objects may die; none is added
    finally:
        gc.unfreeze()


def test_the_wsgi_module_settles_the_heap_once_django_is_up(tmp_path):
    env = {**os.environ, "ETCNET_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    shown = subprocess.run(
        [sys.executable, "-c", "import gc, etcnet.wsgi; print(gc.get_freeze_count())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(shown.stdout) > 10_000  # Django, the apps and the URL maps
