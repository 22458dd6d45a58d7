"""Time of one API-key connection through a connect session, end to end over HTTP.

The app's backend opens connect sessions (secret key); the frontend then sends the
end user's key with a session token: the gateway checks the session, seals the key,
the vault stores it and answers over RabbitMQ, and the attempt is logged.

Three figures:
- one connection: each call made once the previous one's downstream work (event relay,
  webhook planning, log indexing) has settled, timed on a keep-alive connection that
  sends each request in one segment, as a browser sends a small POST: the latency an end
  user sees;
- back to back: wrk on one connection, calls following each other at once, so each
  also competes with the previous calls' downstream work on the same 2 cores;
- session + connection: both calls, as an app runs them, one pair after the other; also the
  connection call's own time within the pair.

It also prints the machine's floor for the hops a creation cannot avoid (one RabbitMQ
request/reply, one PostgreSQL commit), measured the same way (`floor.py`): on a virtual
machine both drift with the host's load, and so does everything built on them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import floor
from harness import create_integration, percentile, running, secret

LUA = """
tokens = {%s}
integration = "%s"
counter = 0
request = function()
  counter = counter + 1
  local token = tokens[(counter %% #tokens) + 1]
  local path = "/auth/api-key/" .. integration .. "?connect_session_token=" .. token ..
               "&connection_id=wrk-" .. counter .. "-" .. math.random(1000000000)
  return wrk.format("POST", path, {["Content-Type"] = "application/json"},
                    '{"api_key": "sk-bench-' .. counter .. '"}')
end
"""


async def open_sessions(stack, count: int) -> list[str]:
    async with aiohttp.ClientSession() as http:
        tokens = []
        for number in range(count):
            async with http.post(f"{stack.gateway}/connect/sessions", headers=secret(stack),
                                 json={"end_user": {"id": f"user-{number}"}}) as response:
                assert response.status == 201, await response.text()
                tokens.append((await response.json())["token"])
        return tokens


async def rounds(stack, integration_id: str, count: int) -> tuple[list[float], list[float]]:
    """Session then connection, as an app does it, timed by a Python client: the pair's
    time and the connection call's own."""
    total_ms: list[float] = []
    connection_ms: list[float] = []
    async with aiohttp.ClientSession() as http:
        for round_number in range(count + 20):
            started = time.perf_counter()
            async with http.post(f"{stack.gateway}/connect/sessions", headers=secret(stack),
                                 json={"end_user": {"id": f"user-{round_number}"}}) as response:
                token = (await response.json())["token"]
            connecting = time.perf_counter()
            async with http.post(
                f"{stack.gateway}/auth/api-key/{integration_id}",
                params={"connection_id": f"c-{uuid.uuid4().hex[:10]}",
                        "connect_session_token": token},
                json={"api_key": f"sk-{uuid.uuid4().hex}"},
            ) as response:
                assert response.status == 200, await response.text()
            done = time.perf_counter()
            if round_number >= 20:  # the first rounds warm caches and connections
                total_ms.append((done - started) * 1000)
                connection_ms.append((done - connecting) * 1000)
    return total_ms, connection_ms


class KeepAliveClient:
    """HTTP/1.1 on one socket, each request written at once. http.client writes the
    headers and the body separately, and the server then wakes twice for one request;
    browsers merge a small body with its headers into one write."""

    def __init__(self, port: int) -> None:
        self._socket = socket.create_connection(("127.0.0.1", port))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pending = b""

    def post(self, path: str, body: bytes) -> int:
        """Send one JSON POST and read its whole response; return the status."""
        self._socket.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        while b"\r\n\r\n" not in self._pending:
            self._pending += self._receive()
        head, _, rest = self._pending.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
        while len(rest) < length:
            rest += self._receive()
        self._pending = rest[length:]
        return int(head.split(b" ", 2)[1])

    def _receive(self) -> bytes:
        chunk = self._socket.recv(65536)
        if not chunk:
            raise ConnectionError("the gateway closed the connection")
        return chunk

    def close(self) -> None:
        self._socket.close()


def one_at_a_time(stack, integration_id: str, tokens: list[str], count: int,
                  settle_seconds: float) -> list[float]:
    client = KeepAliveClient(int(stack.gateway.rsplit(":", 1)[1]))
    timings = []
    for number in range(count + 10):
        time.sleep(settle_seconds)
        path = (f"/auth/api-key/{integration_id}?connection_id=one-{uuid.uuid4().hex[:12]}"
                f"&connect_session_token={tokens[number % len(tokens)]}")
        body = json.dumps({"api_key": f"sk-{uuid.uuid4().hex}"}).encode()
        started = time.perf_counter()
        status = client.post(path, body)
        elapsed = (time.perf_counter() - started) * 1000
        assert status == 200, status
        if number >= 10:
            timings.append(elapsed)
    client.close()
    return timings


def wrk_connections(stack, integration_id: str, tokens: list[str], seconds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "connect.lua"
        script.write_text(LUA % (", ".join(f'"{t}"' for t in tokens), integration_id))
        done = subprocess.run(
            ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", "-s", str(script), stack.gateway],
            check=True, capture_output=True, text=True,
        )
    text = done.stdout
    mean = re.search(r"Latency\s+([\d.]+)(us|ms|s)", text)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    percentiles = {f"p{p}_ms": round(float(v) * scale[u], 3) for p, v, u in re.findall(
        r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    return {"mean_ms": round(float(mean.group(1)) * scale[mean.group(2)], 3), **percentiles,
            "requests": int(re.search(r"(\d+) requests in", text).group(1)),
            "non_2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--settle", type=float, default=0.05,
                        help="seconds between single connections")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    with running(("vault", "gateway", "webhooks", "logs"), log_level=args.log_level) as stack:
        integration_id = create_integration(stack)
        tokens = asyncio.run(open_sessions(stack, 50))
        wrk_connections(stack, integration_id, tokens, 2)  # warm-up
        single = one_at_a_time(stack, integration_id, tokens, args.rounds, args.settle)
        back_to_back = wrk_connections(stack, integration_id, tokens, args.seconds)
        total_ms, after_session_ms = asyncio.run(rounds(stack, integration_id, args.rounds))
        hops = floor.measure(stack.database_url, stack.env["TERAPI_AMQP_URL"], gap=args.settle)
    result = {"bench": "create_connection",
              "one_connection": {"mean_ms": round(statistics.fmean(single), 3),
                                 "p50_ms": round(percentile(single, 0.5), 3),
                                 "p99_ms": round(percentile(single, 0.99), 3)},
              "back_to_back": back_to_back,
              "session_and_connection": {"mean_ms": round(statistics.fmean(total_ms), 3),
                                         "p99_ms": round(percentile(total_ms, 0.99), 3),
                                         "connection_mean_ms": round(
                                             statistics.fmean(after_session_ms), 3)},
              "machine_floor": hops}
    print(f"one connection:        mean {result['one_connection']['mean_ms']} ms, "
          f"p50 {result['one_connection']['p50_ms']} ms, "
          f"p99 {result['one_connection']['p99_ms']} ms")
    print(f"back to back (wrk):    mean {back_to_back['mean_ms']} ms, "
          f"{back_to_back['requests'] / args.seconds:.0f} connections/s")
    print(f"session + connection:  mean {result['session_and_connection']['mean_ms']} ms, "
          f"of which the connection {result['session_and_connection']['connection_mean_ms']} ms")
    print(f"this machine's floor:  RabbitMQ request/reply {hops['rabbitmq_round_trip_ms']} ms "
          f"+ PostgreSQL commit {hops['postgres_commit_ms']} ms, spaced like one connection")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
