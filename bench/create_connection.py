"""Time of one API-key connection through a connect session, end to end over HTTP.

Each round creates a connect session (backend, secret key) and then the connection
(frontend call, session token): the gateway seals the key, the vault stores it and
answers over RabbitMQ. Reported: the connection call alone and session + connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

import aiohttp
from harness import create_integration, percentile, running, secret


async def measure(stack, integration_id: str, count: int) -> tuple[list[float], list[float]]:
    connect_ms: list[float] = []
    total_ms: list[float] = []
    async with aiohttp.ClientSession() as http:
        for round_number in range(count + 20):
            started = time.perf_counter()
            async with http.post(f"{stack.gateway}/connect/sessions", headers=secret(stack),
                                 json={"end_user": {"id": f"user-{round_number}"}}) as response:
                assert response.status == 201, await response.text()
                token = (await response.json())["token"]
            connect_started = time.perf_counter()
            async with http.post(
                f"{stack.gateway}/auth/api-key/{integration_id}",
                params={"connection_id": f"c-{uuid.uuid4().hex[:10]}",
                        "connect_session_token": token},
                json={"api_key": f"sk-{uuid.uuid4().hex}"},
            ) as response:
                assert response.status == 200, await response.text()
            ended = time.perf_counter()
            if round_number >= 20:  # the first rounds warm caches and connections
                connect_ms.append((ended - connect_started) * 1000)
                total_ms.append((ended - started) * 1000)
    return connect_ms, total_ms


def summary(values: list[float]) -> dict[str, float]:
    return {"mean_ms": round(statistics.fmean(values), 3),
            "p50_ms": round(percentile(values, 0.50), 3),
            "p99_ms": round(percentile(values, 0.99), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    with running(("vault", "gateway", "webhooks", "logs"), log_level=args.log_level) as stack:
        integration_id = create_integration(stack)
        connect_ms, total_ms = asyncio.run(measure(stack, integration_id, args.count))
    result = {"bench": "create_connection", "count": args.count,
              "connection": summary(connect_ms), "session_and_connection": summary(total_ms)}
    print(f"connection alone:       mean {result['connection']['mean_ms']} ms, "
          f"p99 {result['connection']['p99_ms']} ms")
    print(f"session + connection:   mean {result['session_and_connection']['mean_ms']} ms, "
          f"p99 {result['session_and_connection']['p99_ms']} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
