"""Each log call prints one line, in the center and in the terminal, also once
waitress' serve() has called logging.basicConfig() (it adds a root handler)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import logging, django
django.setup()
logging.basicConfig()  # what waitress.serve() does before serving
logging.getLogger("etcnet.sms").warning("etcnet-line")
logging.getLogger("django.request").error("django-line")
"""


@pytest.mark.parametrize("settings_module", ["etcnet.settings", "etcnet.terminal.web.settings"])
def test_one_log_call_prints_one_line(settings_module: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "ETCNET_DATA_DIR": str(tmp_path),
        "ETCNET_TERMINAL_DATA": str(tmp_path / "terminal"),
    }
    env.pop("DATABASE_URL", None)

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).splitlines()
    assert sum("etcnet-line" in line for line in lines) == 1
    assert sum("django-line" in line for line in lines) == 1
    assert " WARNING etcnet.sms etcnet-line" in done.stderr
