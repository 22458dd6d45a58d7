"""Every route the public services serve is reachable through the Ingress, on that service."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from terapi_cli.services import all_services
from tests.unit.deploy import kube

PUBLIC = {"gateway": "terapi-gateway", "vault": "terapi-vault", "logs": "terapi-logs"}
PROBES = {"/healthz", "/readyz"}


def served_paths(service: str) -> list[str]:
    """The service's route paths, with each `{variable}` filled in."""
    app = web.Application()
    all_services()[service].setup(app)
    paths = {resource.canonical for resource in app.router.resources()}
    return sorted(re.sub(r"\{[^}]+\}", "x", path) for path in paths - PROBES)


@pytest.mark.parametrize(("service", "backend"), PUBLIC.items())
def test_every_route_of_a_public_service_goes_through_the_ingress_to_it(app, service, backend):
    (ingress,) = kube.of_kind(app, "Ingress")
    host = ingress["spec"]["rules"][0]["host"]
    routes = {path: kube.route(ingress, host, path) for path in served_paths(service)}
    assert {path: to for path, to in routes.items() if to != (backend, "http")} == {}
