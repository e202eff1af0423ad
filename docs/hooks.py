"""MkDocs hook: the lifecycle page's diagram and table come from the state table.

``docs/concepts/lifecycle.md`` holds a Mermaid state diagram and a table between
``<!-- lifecycle:start -->`` and ``<!-- lifecycle:end -->``, generated from
``prodorder_api.orders.states`` (``ALLOWED``, ``TARGET``). ``make docs`` fails when
the page differs from what the table gives (``mkdocs build --strict`` turns the
error into a failed build), and tests/test_walkthroughs.py checks the same, so the
page cannot drift from the code. After changing the state table:

    .venv/bin/python docs/hooks.py      # rewrites the block in the page
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parent / "concepts" / "lifecycle.md"
START, END = "<!-- lifecycle:start -->", "<!-- lifecycle:end -->"
BLOCK = re.compile(re.escape(START) + r"\n(.*?)" + re.escape(END), re.S)


def lifecycle_block() -> str:
    """The Mermaid diagram and the table of allowed actions, from the state table.

    An action in ``TARGET`` is an arrow to its status. Any other action is asked of
    ``states.target`` once for each status an order can have come from (``resume``
    goes back to where the order was held from): an arrow wherever it leads
    elsewhere, else a note that the status allows it and stays.
    """
    from prodorder_api.orders.states import ALLOWED, TARGET, lifecycle_markdown, target

    statuses = list(ALLOWED)
    came_from = {
        status: [
            s for s, actions in ALLOWED.items() if any(TARGET.get(a) == status for a in actions)
        ]
        for status in statuses
    }
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {statuses[0]}: create"]
    notes = []
    for status, actions in ALLOWED.items():
        staying = []
        for action in actions:
            if action in TARGET:
                lines.append(f"    {status} --> {TARGET[action]}: {action}")
                continue
            leads = {target(status, action, origin) for origin in came_from[status]}
            leads = leads or {target(status, action, None)}
            if leads == {status}:
                staying.append(action)
            for where in sorted(leads - {status}, key=statuses.index):
                lines.append(f"    {status} --> {where}: {action}")
        if staying:
            notes.append(f"    note right of {status}: also {', '.join(staying)}")
    lines += [f"    {status} --> [*]" for status, actions in ALLOWED.items() if not actions]
    lines += [*notes, "```"]
    return "\n".join(lines) + "\n\n" + lifecycle_markdown() + "\n"


def page_block(text: str) -> str | None:
    match = BLOCK.search(text)
    return match.group(1) if match else None


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if Path(page.file.abs_src_path) == PAGE and page_block(markdown) != lifecycle_block():
        from mkdocs.exceptions import PluginError

        raise PluginError(
            "docs/concepts/lifecycle.md differs from orders/states.py: "
            "run .venv/bin/python docs/hooks.py"
        )
    return markdown


if __name__ == "__main__":
    sys.path.insert(0, str(PAGE.parents[2] / "src"))
    text = PAGE.read_text()
    PAGE.write_text(BLOCK.sub(lambda _: f"{START}\n{lifecycle_block()}{END}", text))
    print(f"wrote {PAGE}")
