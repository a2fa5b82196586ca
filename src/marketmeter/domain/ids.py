"""MeteringRecordIds: UUIDs of version 7 — 48 bits of the millisecond they were made, then
74 random bits. Unique like any random UUID, and in time order, so that the index on them
grows at one end instead of everywhere (much cheaper inserts than version 4)."""

from __future__ import annotations

import os


def new_ids(n: int, now_ms: int) -> list[str]:
    """`n` new ids made at `now_ms` (epoch milliseconds), from one read of randomness."""
    prefix = (now_ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big")
    noise = os.urandom(10 * n)
    ids = []
    for i in range(0, 10 * n, 10):
        r = noise[i : i + 10]
        raw = (prefix + bytes((0x70 | (r[0] & 0x0F), r[1], 0x80 | (r[2] & 0x3F))) + r[3:10]).hex()
        ids.append(f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}")
    return ids
