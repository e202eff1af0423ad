"""Opaque, time-ordered identifiers (UUIDv7)."""

import os
import time
import uuid
from collections.abc import Iterator

import uuid6

_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid6.uuid7().bytes)


def id_sequence() -> Iterator[uuid.UUID]:
    """UUIDv7s for one batch, increasing, at a fraction of ``new_id``'s cost.

    One clock reading for the batch; a 30-bit counter in ``rand_a`` and the top of
    ``rand_b`` keeps them in order, and 44 fresh random bits each keep them unique
    across processes. MRP makes tens of thousands at once (14 µs each with
    ``new_id``, about 2 µs here).
    """
    millis = (time.time_ns() // 1_000_000) & ((1 << 48) - 1)
    head = (millis << 80) | _VERSION_7 | _VARIANT
    counter = 0
    while True:
        randoms = os.urandom(8 * 1024)
        for offset in range(0, len(randoms), 8):
            count = counter & ((1 << 30) - 1)
            rand_a, rand_b_top = count >> 18, count & ((1 << 18) - 1)
            tail = int.from_bytes(randoms[offset : offset + 8]) & ((1 << 44) - 1)
            yield uuid.UUID(int=head | (rand_a << 64) | (rand_b_top << 44) | tail)
            counter += 1


def parse_id(text: str) -> uuid.UUID | None:
    """The UUID an id string names, or None when it cannot name anything we stored."""
    if len(text) > 64:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
