"""The production-order lifecycle as data.

``ALLOWED`` says which actions each status permits; ``TARGET`` says where an
action leads, and ``STAMPED`` which timestamp a status sets. The service
(``service.record``), the 409 ``invalid_transition`` problem and the API docs all
read these tables, so they cannot disagree.

    planned ──release──▶ released ──start──▶ in_progress ──complete──▶ completed
       │   ◀──unrelease──    │                   │
       └──cancel──▶ cancelled ◀──cancel──┘        └─cancel (nothing consumed or produced)

    released, in_progress ──hold──▶ on_hold ──resume──▶ the status it was held from

``split`` (planned, released) and ``return`` (in_progress) keep the status.
"""

from typing import Final, Literal

from prodorder_api import state_table

Status = Literal["planned", "released", "in_progress", "on_hold", "completed", "cancelled"]
Action = Literal[
    "update",
    "availability",
    "release",
    "reserve",
    "unrelease",
    "start",
    "consume",
    "output",
    "scrap",
    "complete",
    "cancel",
    "operation",
    "hold",
    "resume",
    "split",
    "return",
]

ALLOWED: Final[dict[Status, tuple[Action, ...]]] = {
    "planned": ("update", "availability", "release", "split", "cancel"),
    "released": (
        "update",
        "availability",
        "reserve",
        "unrelease",
        "start",
        "hold",
        "split",
        "cancel",
    ),
    "in_progress": (
        "update",
        "availability",
        "reserve",
        "consume",
        "output",
        "scrap",
        "complete",
        "cancel",
        "operation",
        "hold",
        "return",
    ),
    # Held: reservations stay, nothing moves. Resume first to act (or to cancel).
    "on_hold": ("update", "availability", "resume"),
    "completed": (),
    "cancelled": (),
}

TARGET: Final[dict[Action, Status]] = {
    "release": "released",
    "unrelease": "planned",
    "start": "in_progress",
    "complete": "completed",
    "cancel": "cancelled",
    "hold": "on_hold",
}

# The timestamp each status sets when an order enters it.
STAMPED: Final[dict[Status, str]] = {
    "released": "released_at",
    "in_progress": "started_at",
    "completed": "completed_at",
    "cancelled": "cancelled_at",
}

# Orders that will still make something: MRP's supply, capacity, lateness. A held one
# keeps its reservations and its place in the plan.
OPEN_STATUSES: Final[tuple[Status, ...]] = ("planned", "released", "in_progress", "on_hold")
STATUSES: Final[tuple[Status, ...]] = tuple(ALLOWED)


def target(status: str, action: str, held_from: str | None) -> str:
    """Where ``action`` leads from ``status``: ``resume`` goes back to the status the
    order was held from, the rest as ``TARGET`` says (or nowhere)."""
    if action == "resume":
        assert held_from is not None, "an order on hold knows where it was held from"
        return held_from
    return TARGET.get(action, status)  # type: ignore[call-overload, no-any-return]


def check(status: str, action: Action) -> None:
    """Raise 409 ``invalid_transition`` unless ``action`` is allowed in ``status``."""
    state_table.check(ALLOWED, "a production order", status, action)


def lifecycle_markdown() -> str:
    """The table for the API docs."""
    return state_table.markdown(ALLOWED)
