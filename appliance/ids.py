"""UUIDv7 keys: time-ordered, made where the row is written, unique across sites."""
import os
import time


def uuid7(unix_ms: int | None = None) -> str:
    """Return a new RFC 9562 UUIDv7 as canonical text."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    raw = bytearray((ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big") + os.urandom(10))
    # Built from bytes rather than uuid.UUID: a 160,000-row send calls this per row.
    raw[6] = 0x70 | (raw[6] & 0x0F)     # version 7
    raw[8] = 0x80 | (raw[8] & 0x3F)     # RFC variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
