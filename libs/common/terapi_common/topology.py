"""Names of every exchange and queue, in one place, and AMQP topic matching."""

from __future__ import annotations

from functools import lru_cache

EVENTS_EXCHANGE = "terapi.events"
DEAD_LETTER_EXCHANGE = "terapi.dlx"
MAX_DELIVERIES = 5
# Seconds before a failed event is delivered again, by failure (the last repeats): a
# database failover or a restarting service gets minutes, not milliseconds, to come back.
RETRY_DELAYS = (1.0, 5.0, 30.0, 120.0)


def retry_delay(failures: int, delays: tuple[float, ...] = RETRY_DELAYS) -> float:
    """The wait after the `failures`-th failed delivery (1-based)."""
    return delays[min(max(failures, 1), len(delays)) - 1]


def retry_queue(queue: str, delay: float) -> str:
    """Where a failed event of `queue` waits `delay` seconds before going back to it."""
    return f"{queue}.retry.{round(delay * 1000)}ms"


def queue_name(service: str, handler: str) -> str:
    """The durable queue of one event handler: `terapi.<service>.<handler>`."""
    return f"terapi.{service}.{handler}"


def dead_letter_queue(queue: str) -> str:
    """Where a queue's rejected messages wait for a human."""
    return f"{queue}.dead"


def command_queue(command_type: str) -> str:
    """The queue a request/reply command is served from."""
    return f"terapi.rpc.{command_type}"


@lru_cache(maxsize=1024)
def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic rules: `*` is exactly one word, `#` is zero or more words."""
    return _match(tuple(pattern.split(".")), tuple(routing_key.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])
