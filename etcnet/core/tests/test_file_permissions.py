"""Files with personal data are created readable by their owner only: the
center's SQLite database with its -wal/-shm, media (ID and vehicle photos),
and whatever a process started by `etcnet` writes (the terminal's store:
etcnet/tolling/tests/test_terminal_store_permissions.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A common default umask (files 0644), under which the old code leaked."""
    old = os.umask(0o022)
    yield
    os.umask(old)


CENTER = """
import django
from django.db import connection
django.setup()
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE t (x text)")
    cursor.execute("INSERT INTO t VALUES ('610102199001011234')")
    # While the connection is open, the -wal and -shm files exist too.
    import json, os, stat
    from django.conf import settings
    folder = settings.DATA_DIR
    print(json.dumps({
        name: stat.S_IMODE(os.stat(folder / name).st_mode)
        for name in os.listdir(folder) if name.startswith("etcnet.sqlite3")
    }))
"""


def test_the_center_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = {**os.environ, "ETCNET_DATA_DIR": str(data), "DJANGO_SETTINGS_MODULE": "etcnet.settings"}
    env.pop("DATABASE_URL", None)

    done = subprocess.run(
        [sys.executable, "-c", "import os; os.umask(0o022)\n" + CENTER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert mode(data) == 0o700
    files = json.loads(done.stdout.splitlines()[-1])
    assert files == {
        "etcnet.sqlite3": 0o600,
        "etcnet.sqlite3-wal": 0o600,
        "etcnet.sqlite3-shm": 0o600,
    }


def test_an_existing_loose_database_is_made_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / "etcnet.sqlite3").touch(mode=0o644)
    (data / "etcnet.sqlite3").chmod(0o644)
    env = {**os.environ, "ETCNET_DATA_DIR": str(data), "DJANGO_SETTINGS_MODULE": "etcnet.settings"}
    env.pop("DATABASE_URL", None)

    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, timeout=120
    )

    assert done.returncode == 0
    assert mode(data / "etcnet.sqlite3") == 0o600


def test_uploaded_files_and_their_folders_are_owner_only(tmp_path: Path, loose_umask: None) -> None:
    storage = FileSystemStorage(location=tmp_path / "media")

    name = storage.save("issuance/2026/11/id_photo-1.jpg", ContentFile(b"\xff\xd8 photo"))

    assert mode(tmp_path / "media" / name) == 0o600
    assert mode(tmp_path / "media" / "issuance" / "2026" / "11") == 0o700
    assert mode(tmp_path / "media" / "issuance") == 0o700


def test_an_etcnet_process_makes_owner_only_files(tmp_path: Path) -> None:
    made = tmp_path / "f"
    script = "\n".join(
        (
            "import os, sys",
            "os.umask(0o022)",
            "sys.argv = ['etcnet', 'help']",
            "from etcnet import cli",
            "cli.main()",
            f"open({str(made)!r}, 'w').close()",
        )
    )

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert mode(made) == 0o600
