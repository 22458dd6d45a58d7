"""A trace started by a caller continues in the services that handle its messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.integration


def test_commands_and_events_carry_the_callers_trace_across_rabbitmq(amqp_url) -> None:
    """The command's handler and the event's consumer run in spans whose parent is the
    caller's span, so one trace shows a whole flow across services."""
    script = Path(__file__).with_name("trace_script.py")
    done = subprocess.run(
        [sys.executable, str(script), amqp_url, unique("terapi.test.traced")],
        capture_output=True, text=True, timeout=60, check=False,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trace crossed the bus" in done.stdout
