"""The center process keeps what start-up loaded out of the collector's way."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from etcnet.core import runtime


def test_settle_freezes_what_is_alive_and_leaves_new_objects_to_the_collector():
    try:
        frozen = runtime.settle()
        assert frozen == gc.get_freeze_count() > 0
        later = [[n] for n in range(10)]
        assert all(gc.is_tracked(item) for item in later)
        assert gc.get_freeze_count() == frozen  # new objects are not frozen
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
