"""A lifecycle as data: status → allowed actions. The check and the docs' table for
any such table (production orders, purchase orders)."""

from collections.abc import Mapping, Sequence
from typing import Any

from prodorder_api.errors import InvalidTransition


def check(allowed: Mapping[Any, Sequence[str]], noun: str, status: str, action: str) -> None:
    """Raise 409 ``invalid_transition`` unless ``action`` is allowed in ``status``;
    ``noun`` names the record in the message ("a production order")."""
    permitted = allowed.get(status, ())
    if action not in permitted:
        raise InvalidTransition(
            f"cannot {action} {noun} that is {status}",
            current_status=status,
            allowed_actions=list(permitted),
        )


def markdown(allowed: Mapping[Any, Sequence[str]]) -> str:
    """The table for the API docs."""
    rows = [
        f"| `{status}` | {', '.join(f'`{a}`' for a in actions) or '—'} |"
        for status, actions in allowed.items()
    ]
    return "| status | allowed actions |\n| --- | --- |\n" + "\n".join(rows)
