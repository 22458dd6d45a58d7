"""Throughput and latency of `GET /connections/{id}` (the backend's credential read).

Starts the vault and gateway as separate processes, creates connections through the
gateway, then drives the vault with wrk (32 connections, 2 threads) over random ids.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx
from harness import create_integration, running, secret

# Requests are formatted once in init(): formatting per request in Lua would spend the
# cores the measured services need.
LUA = """
ids = {%s}
token = "%s"
integration = "%s"
requests = {}
init = function(args)
  for i, id in ipairs(ids) do
    requests[i] = wrk.format("GET", "/connections/" .. id .. "?integration_id=" .. integration,
                             {["Authorization"] = "Bearer " .. token})
  end
end
request = function()
  return requests[math.random(#requests)]
end
"""


def seed(stack, integration_id: str, count: int) -> list[str]:
    ids = []
    with httpx.Client() as http:
        for _ in range(count):
            connection_id = f"bench-{uuid.uuid4().hex[:10]}"
            response = http.post(
                f"{stack.gateway}/auth/api-key/{integration_id}",
                params={"connection_id": connection_id, "public_key": stack.keys["public_key"]},
                json={"api_key": f"sk-{uuid.uuid4().hex}"},
            )
            response.raise_for_status()
            ids.append(connection_id)
        check = http.get(f"{stack.vault}/connections/{ids[0]}", headers=secret(stack),
                         params={"integration_id": integration_id})
        check.raise_for_status()
        assert check.json()["credentials"]["type"] == "API_KEY"
    return ids


def parse_wrk(output: str) -> dict[str, float]:
    def to_ms(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    latencies = {
        f"p{p}_ms": to_ms(v, u)
        for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"requests_per_second": rps, **latencies,
            "non_2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="wrk threads; one leaves more of the 2 cores to what is measured")
    parser.add_argument("--seed", type=int, default=200)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--workers", type=int, default=2,
                        help="vault processes sharing the port (one per core)")
    args = parser.parse_args()
    with running(("vault", "gateway", "logs"), log_level=args.log_level,
                 workers={"vault": args.workers}) as stack:
        integration_id = create_integration(stack)
        ids = seed(stack, integration_id, args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "read.lua"
            script.write_text(LUA % (", ".join(f'"{i}"' for i in ids), stack.keys["secret_key"],
                                     integration_id))
            load = ["wrk", f"-t{args.threads}", f"-c{args.connections}", "-s", str(script)]
            subprocess.run([*load, "-d2s", stack.vault], check=True, capture_output=True)
            done = subprocess.run(
                [*load, f"-d{args.duration}s", "--latency", stack.vault],
                check=True, capture_output=True, text=True,
            )
    print(done.stdout)
    result = parse_wrk(done.stdout)
    print(json.dumps({"bench": "read_connections", "connections": args.connections,
                      "vault_workers": args.workers, **result}))


if __name__ == "__main__":
    main()
