"""Start the services a benchmark needs, on a fresh database and vhost, and seed data."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from terapi_common.crypto import generate_key  # noqa: E402
from tests.conftest import fresh_database, fresh_vhost  # noqa: E402  # needs the root on the path
from tests.e2e.stack import Stack, free_port  # noqa: E402


@contextlib.contextmanager
def running(services: tuple[str, ...], *, log_level: str = "info",
            workers: dict[str, int] | None = None,
            extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """The named services, each in its own process, on real PostgreSQL and RabbitMQ."""
    from tests.e2e.stack import base_env

    with fresh_database() as database_url, fresh_vhost("terapi-bench") as amqp_url, \
            tempfile.TemporaryDirectory() as tmp:
        ports = {name: free_port() for name in services}
        env = base_env(Path(tmp) / "home")
        env.update(extra_env or {})
        if "gateway" in ports:  # links and OAuth redirect URIs must lead back to it
            env["TERAPI_PUBLIC_URL"] = f"http://127.0.0.1:{ports['gateway']}"
        env.update({
            "TERAPI_DATABASE_URL": database_url, "TERAPI_AMQP_URL": amqp_url,
            "TERAPI_ENCRYPTION_KEY": generate_key(), "TERAPI_LOG_LEVEL": log_level,
        })
        stack = Stack(env=env, log_dir=Path(tmp), database_url=database_url,
                      urls={n: f"http://127.0.0.1:{p}" for n, p in ports.items()})
        stack.terapi("migrate")
        try:
            for name in services:
                count = (workers or {}).get(name, 1)
                stack.start(name, ["run", name, "--workers", str(count)], ports[name])
            import json

            stack.keys = json.loads(stack.terapi("keys", "show", "--env", "dev", "--json"))
            yield stack
        finally:
            stack.stop()


def create_integration(stack: Stack, provider: str = "api-key") -> str:
    integration_id = f"bench-{uuid.uuid4().hex[:6]}"
    response = httpx.post(f"{stack.vault}/integrations", headers=secret(stack),
                          json={"integration_id": integration_id, "provider": provider})
    response.raise_for_status()
    return integration_id


def secret(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.keys['secret_key']}"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
