"""Several processes serving one service on one port, like a pre-fork server.

The kernel spreads connections across processes that bind the port with SO_REUSEPORT.
The supervisor forwards SIGTERM/SIGINT, so each worker stops gracefully, and stops them
all if one dies: a partly running service is worse than a restart by the orchestrator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from terapi_common.settings import TerapiSettings


def supervise(service: str, settings: TerapiSettings) -> int:
    """Run `settings.workers` copies of `terapi run <service>`; returns the exit code."""
    env = {**os.environ, "TERAPI_WORKERS": "1", "TERAPI_REUSE_PORT": "true",
           "TERAPI_PORT": str(settings.port), "TERAPI_HOST": settings.host}
    children = [
        subprocess.Popen([sys.executable, "-m", "terapi_cli.main", "run", service], env=env)  # noqa: S603  # our own command
        for _ in range(settings.workers)
    ]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    forward(signal.SIGTERM, None)
    codes = [child.wait() for child in children]
    return next((code for code in codes if code != 0), 0)
