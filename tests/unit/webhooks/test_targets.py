"""Which webhook URLs may be called at all."""

from __future__ import annotations

import pytest

from terapi_webhooks.targets import PrivateTargetError, PublicOnlyResolver, refusal


@pytest.mark.parametrize("url", ["ftp://app.example/h", "file:///etc/passwd", "http:///nohost"])
def test_non_http_urls_are_refused(url: str) -> None:
    assert refusal(url, allow_private=True) is not None


def test_private_ip_literal_is_refused_when_private_targets_are_off() -> None:
    assert refusal("http://10.0.0.5/h", allow_private=False) == "10.0.0.5 is a private address"


def test_private_ip_literal_is_allowed_when_private_targets_are_on() -> None:
    assert refusal("http://10.0.0.5/h", allow_private=True) is None


def test_host_names_are_left_to_the_resolver() -> None:
    assert refusal("https://localhost/h", allow_private=False) is None


class _FixedResolver:
    """Answers every lookup with the same addresses, as a DNS server under test would."""

    def __init__(self, *addresses: str) -> None:
        self._addresses = addresses

    async def resolve(self, host, port=0, family=0):
        return [{"hostname": host, "host": a, "port": port, "family": family, "proto": 0,
                 "flags": 0} for a in self._addresses]

    async def close(self) -> None:
        return None


async def test_resolver_refuses_a_name_with_any_private_address() -> None:
    resolver = PublicOnlyResolver(_FixedResolver("93.184.216.34", "10.0.0.7"))
    with pytest.raises(PrivateTargetError, match="rebind.example resolves to a private"):
        await resolver.resolve("rebind.example", 443)


async def test_resolver_passes_public_addresses_through() -> None:
    resolver = PublicOnlyResolver(_FixedResolver("93.184.216.34"))
    hosts = await resolver.resolve("app.example", 443)
    assert [h["host"] for h in hosts] == ["93.184.216.34"]
