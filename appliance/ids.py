"""UUIDv7 keys: time-ordered, made where the row is written, unique across sites."""
import os
import time
import uuid


def uuid7(unix_ms: int | None = None) -> str:
    """Return a new RFC 9562 UUIDv7 as canonical text."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big")   # 80 random bits
    rand_a = rand >> 68                             # 12 bits
    rand_b = rand & ((1 << 62) - 1)                 # 62 bits
    value = ((ms & 0xFFFF_FFFF_FFFF) << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))
