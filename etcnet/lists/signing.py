"""The center's Ed25519 key for signing status-list versions, and the keys it
trusts for imported files (settings ``ETCNET_LIST_*``, docs/lists.md)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from django.conf import settings

from etcnet.lists.versionfile import key_id, public_key_from_text


def signing_key() -> Ed25519PrivateKey:
    """The center's key, made (mode 0600) the first time it is needed."""
    path = Path(settings.ETCNET_LIST_KEY_FILE)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)  # never replaces a key another process just made
        temporary.unlink()
    loaded = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return loaded


def trusted_keys() -> dict[str, Ed25519PublicKey]:
    """Key id → public key: the center's own and the configured publishers'."""
    keys = [signing_key().public_key()]
    keys += [public_key_from_text(text) for text in settings.ETCNET_LIST_TRUSTED_KEYS]
    return {key_id(key): key for key in keys}
