"""The purchase-order lifecycle as data, read by the service, the 409 and the docs.

    open ──receive (every line in full)──▶ received
      │ ◀──receive (in part)──┘
      └──cancel (nothing received yet)──▶ cancelled

A receipt keeps the order ``open`` until every line has received at least its
quantity; then it is ``received``. Both end states are final.
"""

from typing import Final, Literal

from prodorder_api import state_table

Status = Literal["open", "received", "cancelled"]
Action = Literal["receive", "cancel"]

ALLOWED: Final[dict[Status, tuple[Action, ...]]] = {
    "open": ("receive", "cancel"),
    "received": (),
    "cancelled": (),
}
STATUSES: Final[tuple[Status, ...]] = tuple(ALLOWED)
# Purchase orders whose remaining lines are still to come: incoming stock, MRP supply.
OPEN_STATUSES: Final[tuple[Status, ...]] = ("open",)


def check(status: str, action: Action) -> None:
    """Raise 409 ``invalid_transition`` unless ``action`` is allowed in ``status``."""
    state_table.check(ALLOWED, "a purchase order", status, action)


def lifecycle_markdown() -> str:
    """The table for the API docs."""
    return state_table.markdown(ALLOWED)
