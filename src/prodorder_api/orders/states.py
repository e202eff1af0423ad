"""The production-order lifecycle as data.

``ALLOWED`` says which actions each status permits; ``TARGET`` says where an
action leads, and ``STAMPED`` which timestamp a status sets. The service
(``service.record``), the 409 ``invalid_transition`` problem and the API docs all
read these tables, so they cannot disagree.

    planned ──release──▶ released ──start──▶ in_progress ──complete──▶ completed
       │   ◀──unrelease──    │                   │
       └──cancel──▶ cancelled ◀──cancel──┘        └─cancel (nothing consumed or produced)
"""

from typing import Final, Literal

from prodorder_api.errors import InvalidTransition

Status = Literal["planned", "released", "in_progress", "completed", "cancelled"]
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
]

ALLOWED: Final[dict[Status, tuple[Action, ...]]] = {
    "planned": ("update", "availability", "release", "cancel"),
    "released": ("update", "availability", "reserve", "unrelease", "start", "cancel"),
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
    ),
    "completed": (),
    "cancelled": (),
}

TARGET: Final[dict[Action, Status]] = {
    "release": "released",
    "unrelease": "planned",
    "start": "in_progress",
    "complete": "completed",
    "cancel": "cancelled",
}

# The timestamp each status sets when an order enters it.
STAMPED: Final[dict[Status, str]] = {
    "released": "released_at",
    "in_progress": "started_at",
    "completed": "completed_at",
    "cancelled": "cancelled_at",
}

OPEN_STATUSES: Final[tuple[Status, ...]] = ("planned", "released", "in_progress")


def check(status: str, action: Action) -> None:
    """Raise 409 ``invalid_transition`` unless ``action`` is allowed in ``status``."""
    allowed = ALLOWED.get(status, ())  # type: ignore[call-overload]
    if action not in allowed:
        raise InvalidTransition(
            f"cannot {action} a production order that is {status}",
            current_status=status,
            allowed_actions=list(allowed),
        )


def lifecycle_markdown() -> str:
    """The table for the API docs."""
    rows = [
        f"| `{status}` | {', '.join(f'`{a}`' for a in actions) or '—'} |"
        for status, actions in ALLOWED.items()
    ]
    return "| status | allowed actions |\n| --- | --- |\n" + "\n".join(rows)
