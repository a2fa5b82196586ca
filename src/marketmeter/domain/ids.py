"""MeteringRecordIds: UUIDs of version 7 (RFC 9562) — 48 bits of the millisecond they were
made, then 58 random bits and a 16-bit counter ("fixed bit-length dedicated counter",
§6.2). The ids made together share their random bits and count up, so that they cost one
string each; ids made apart differ in their random bits. Unique like random UUIDs, and in
time order, so that the index on them grows at one end instead of everywhere (much
cheaper inserts than version 4)."""

from __future__ import annotations

import os

_COUNTER = 0x10000
_VARIANT = "89ab"  # the variant (binary 10) and two random bits


def new_ids(n: int, now_ms: int) -> list[str]:
    """`n` new ids made at `now_ms` (epoch milliseconds), in ascending order."""
    t = f"{now_ms & 0xFFFF_FFFF_FFFF:012x}"
    ids: list[str] = []
    while len(ids) < n:
        count = min(n - len(ids), _COUNTER)
        noise = os.urandom(8)
        r = noise[:7].hex()
        head = f"{t[:8]}-{t[8:]}-7{r[:3]}-{_VARIANT[noise[7] & 3]}{r[3:6]}-{r[6:]}"
        ids.extend([f"{head}{i:04x}" for i in range(count)])
    return ids
