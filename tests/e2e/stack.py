"""Start Terapi as real processes: five pods' worth of `terapi run`, or one `terapi up`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("vault", "gateway", "refresher", "webhooks", "logs")
TERAPI = [sys.executable, "-m", "terapi_cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text()[-4000:]
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in {timeout}s:\n{log_path.read_text()[-4000:]}")


@dataclass
class Stack:
    """Running Terapi processes and how to reach them."""

    env: dict[str, str]
    urls: dict[str, str]
    log_dir: Path
    database_url: str | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def vault(self) -> str:
        return self.urls["vault"]

    @property
    def gateway(self) -> str:
        return self.urls["gateway"]

    @property
    def logs(self) -> str:
        return self.urls["logs"]

    def terapi(self, *args: str) -> str:
        done = subprocess.run(
            [*TERAPI, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"terapi {' '.join(args)} failed: {done.stderr[-3000:]}")
        return done.stdout

    def start(self, name: str, args: list[str], port: int) -> None:
        log_path = self.log_dir / f"{name}.log"
        handle = log_path.open("wb")
        env = {**self.env, "TERAPI_PORT": str(port)}
        self.processes[name] = subprocess.Popen(  # noqa: S603  # our own command, fixed args
            [*TERAPI, *args], env=env, stdout=handle, stderr=subprocess.STDOUT
        )
        wait_ready(f"http://127.0.0.1:{port}", self.processes[name], log_path)

    def stop(self) -> dict[str, int]:
        """SIGTERM every process (graceful stop) and return their exit codes."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = -9
        return codes

    def output(self) -> str:
        """Everything the processes printed, to check that no secret was logged."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERAPI_")}
    env.update({"TERAPI_HOME": str(home), "TERAPI_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    return env


def start_split_stack(tmp: Path, *, database_url: str, amqp_url: str, key: str,
                      extra_env: dict[str, str] | None = None) -> Stack:
    """Each service in its own process on real PostgreSQL and RabbitMQ."""
    ports = {name: free_port() for name in SERVICES}
    env = base_env(tmp / "home")
    env.update(extra_env or {})
    env.update({
        "TERAPI_DATABASE_URL": database_url,
        "TERAPI_AMQP_URL": amqp_url,
        "TERAPI_ENCRYPTION_KEY": key,
        "TERAPI_PUBLIC_URL": f"http://127.0.0.1:{ports['gateway']}",
        "TERAPI_WEBHOOK_FIRST_RETRY_SECONDS": "0.2",
    })
    stack = Stack(env=env, log_dir=tmp, database_url=database_url,
                  urls={n: f"http://127.0.0.1:{p}" for n, p in ports.items()})
    stack.terapi("migrate")
    try:
        for name in SERVICES:
            stack.start(name, ["run", name], ports[name])
    except Exception:
        stack.stop()
        raise
    stack.keys = json.loads(stack.terapi("keys", "show", "--env", "dev", "--json"))
    return stack


def start_single_process(tmp: Path, extra_env: dict[str, str] | None = None) -> Stack:
    """`terapi up` with no settings: embedded PostgreSQL and the in-process bus."""
    port = free_port()
    env = base_env(tmp / "home")
    env.update(extra_env or {})
    env["TERAPI_WEBHOOK_FIRST_RETRY_SECONDS"] = "0.2"
    # The public URL `terapi up` gives itself: OAuth callbacks come back to that host, so a
    # browser must start its flows there for the flow cookie to follow.
    url = f"http://localhost:{port}"
    stack = Stack(env=env, log_dir=tmp, urls={n: url for n in SERVICES})
    stack.start("up", ["up", "--port", str(port)], port)
    stack.keys = json.loads(stack.terapi("keys", "show", "--env", "dev", "--json"))
    return stack
