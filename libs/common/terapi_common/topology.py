"""Names of every exchange and queue, in one place, and AMQP topic matching."""

from __future__ import annotations

from functools import lru_cache

EVENTS_EXCHANGE = "terapi.events"
DEAD_LETTER_EXCHANGE = "terapi.dlx"
MAX_DELIVERIES = 5


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
