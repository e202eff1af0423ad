"""`make fuzz`: schemathesis against the live server, generated from the server's own schema.

Starts the real server on loopback with a fresh SQLite database and an admin key
(see live_server.py), then lets schemathesis send every operation valid and invalid
requests. A run fails on any 5xx, any status code the document does not declare, and
any response whose content type or body does not match the document.

The run is bounded: a few examples per operation and phase (`FUZZ_MAX_EXAMPLES`) and a
time budget (`FUZZ_MAX_TIME`, seconds). Extra schemathesis options go in `FUZZ_ARGS`,
e.g. `FUZZ_ARGS="--seed 1234"` to replay a run.
"""

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from live_server import live_server

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


def main() -> int:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    max_time = int(os.environ.get("FUZZ_MAX_TIME", "90"))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp, live_server(Path(tmp)) as server:
        command = [
            str(schemathesis),
            "run",
            f"{server.base_url}/openapi.json",
            *("--checks", ",".join(CHECKS)),
            *("--header", f"Authorization: Bearer {server.token}"),
            *("--max-examples", os.environ.get("FUZZ_MAX_EXAMPLES", "25")),
            *("--max-time", str(max_time)),
            *("--workers", "2"),
            *("--request-timeout", "10"),
            *("--generation-database", "none"),
            *("--report-dir", str(Path(tmp) / "report")),
            *shlex.split(os.environ.get("FUZZ_ARGS", "")),
        ]
        # The time budget bounds the run; the timeout only guards against a hang.
        status = subprocess.run(command, cwd=tmp, timeout=max_time + 120).returncode
        if status != 0:
            print(f"fuzz: server log tail:\n{server.log.read_text(errors='replace')[-4000:]}")
    print(f"fuzz: schemathesis exited {status} after {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
