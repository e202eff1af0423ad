"""Optimistic concurrency: ``ETag`` out, ``If-Match`` and ``If-None-Match`` in.

Every versioned resource (production orders, items, BOMs, work centers) answers
with ``ETag: "<version>"`` (set by ``routing.ApiRoute`` from the body's
``version``). A PATCH or action that sends ``If-Match`` is refused with 412
``precondition_failed`` — and changes nothing — when the resource has moved on.
The check happens after the row is locked, so it cannot race.
"""

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from prodorder_api.errors import PreconditionFailed

_TAG = re.compile(r'^(?:W/)?"(\d{1,18})"$')


def etag(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True)
class Precondition:
    """The versions an ``If-Match`` accepts; None accepts any (no header, or ``*``)."""

    versions: frozenset[int] | None = None

    def check(self, version: int) -> None:
        if self.versions is not None and version not in self.versions:
            raise PreconditionFailed(
                f"the resource is at version {version} (ETag {etag(version)}); "
                "fetch it again and retry"
            )


ANY = Precondition()


def matches(if_none_match: str | None, version: int) -> bool:
    """Whether ``If-None-Match`` names ``version`` (or is ``*``): the client's copy is
    current, and a GET answers 304 Not Modified. Weak tags compare as strong ones
    (RFC 9110: ``If-None-Match`` uses the weak comparison)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    for part in if_none_match.split(","):
        match = _TAG.match(part.strip())
        if match is not None and int(match.group(1)) == version:
            return True
    return False


def names_newer(if_none_match: str | None, version: int) -> bool:
    """Whether ``If-None-Match`` names a version past ``version``: the client has seen
    a change this copy of the data does not hold yet (a replica behind the primary)."""
    for part in (if_none_match or "").split(","):
        match = _TAG.match(part.strip())
        if match is not None and int(match.group(1)) > version:
            return True
    return False


async def if_match_header(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The `ETag` you last saw, e.g. `"3"`: refused with 412 when stale.',
        ),
    ] = None,
) -> Precondition:
    if if_match is None or if_match.strip() == "*":
        return ANY
    versions = set()
    for part in if_match.split(","):
        match = _TAG.match(part.strip())
        if match is None:
            raise PreconditionFailed(f"If-Match {if_match!r} is not an ETag this API returned")
        versions.add(int(match.group(1)))
    return Precondition(frozenset(versions))


IfMatch = Annotated[Precondition, Depends(if_match_header)]
