"""Key files in the data dir: made once, mode 0600, never in the repo or the logs."""
from __future__ import annotations

import os
from pathlib import Path


def load_or_create_key(path: Path, size: int = 32) -> bytes:
    """Return the key stored at path, making a random one (mode 0600) if there is none."""
    if path.exists():
        key = path.read_bytes()
        if len(key) != size:
            raise ValueError(f"{path}: expected a {size}-byte key, found {len(key)} bytes")
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = os.urandom(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
