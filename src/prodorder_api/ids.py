"""Opaque, time-ordered identifiers (UUIDv7)."""

import uuid

import uuid6


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid6.uuid7().bytes)


def parse_id(text: str) -> uuid.UUID | None:
    """The UUID an id string names, or None when it cannot name anything we stored."""
    if len(text) > 64:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
