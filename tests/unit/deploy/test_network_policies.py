"""The network policies let each pod talk only to what its job needs."""

from __future__ import annotations

import pytest

from tests.unit.deploy import kube

INGRESS_NAMESPACE = {"kubernetes.io/metadata.name": "ingress-nginx"}
INGRESS_CONTROLLER = {"app.kubernetes.io/name": "ingress-nginx"}
PUBLIC = ["gateway", "vault", "logs"]
INTERNAL = ["refresher", "webhooks", "migrate"]
EVERY_POD = PUBLIC + INTERNAL
INTERNET_HOST = "203.0.113.7"  # TEST-NET-3, stands for any public address
METADATA_HOST = "169.254.169.254"  # cloud instance metadata, holds node credentials


def labels(workloads, name):
    return kube.pod_labels(workloads[name])


def test_every_pod_denies_all_traffic_unless_a_policy_allows_it(policies, workloads):
    for name in EVERY_POD:
        for direction in ("Ingress", "Egress"):
            isolating = kube.policies_for(policies, labels(workloads, name), direction)
            assert isolating, (name, direction)


@pytest.mark.parametrize("name", PUBLIC)
def test_ingress_controller_reaches_services_with_public_routes(policies, workloads, name):
    assert kube.ingress_allowed(
        policies, labels(workloads, name), namespace=INGRESS_NAMESPACE,
        source=INGRESS_CONTROLLER, port=3003,
    )


@pytest.mark.parametrize("name", INTERNAL)
def test_ingress_controller_cannot_reach_internal_pods(policies, workloads, name):
    assert not kube.ingress_allowed(
        policies, labels(workloads, name), namespace=INGRESS_NAMESPACE,
        source=INGRESS_CONTROLLER, port=3003,
    )


@pytest.mark.parametrize("name", EVERY_POD)
def test_other_namespaces_cannot_reach_terapi(policies, workloads, name):
    assert not kube.ingress_allowed(
        policies, labels(workloads, name), namespace={"kubernetes.io/metadata.name": "default"},
        source={"app": "anything"}, port=3003,
    )


@pytest.mark.parametrize("name", EVERY_POD)
def test_terapi_pods_cannot_reach_each_other_over_http(policies, workloads, name):
    """Services meet only on the bus, so no pod needs another pod's port."""
    for source in EVERY_POD:
        assert not kube.ingress_allowed(
            policies, labels(workloads, name), namespace={"kubernetes.io/metadata.name": "terapi"},
            source=labels(workloads, source), port=3003, own_namespace=True,
        ), source


@pytest.mark.parametrize("name", EVERY_POD)
@pytest.mark.parametrize(("port", "protocol"), [(53, "UDP"), (53, "TCP"), (5432, "TCP"),
                                                (5672, "TCP"), (5671, "TCP")])
def test_every_pod_reaches_dns_postgresql_and_rabbitmq(policies, workloads, name, port, protocol):
    assert kube.egress_allowed(
        policies, labels(workloads, name), ip="10.20.30.40", port=port, protocol=protocol
    )


@pytest.mark.parametrize("name", ["gateway", "refresher", "webhooks"])
def test_pods_that_call_providers_or_deliver_webhooks_reach_https_hosts(
    policies, workloads, name
):
    assert kube.egress_allowed(policies, labels(workloads, name), ip=INTERNET_HOST, port=443)
    assert kube.egress_allowed(policies, labels(workloads, name), ip="2001:db8::7", port=443)


@pytest.mark.parametrize("name", ["vault", "logs", "migrate"])
def test_other_pods_cannot_reach_the_internet(policies, workloads, name):
    assert not kube.egress_allowed(policies, labels(workloads, name), ip=INTERNET_HOST, port=443)


def test_only_webhooks_reach_any_port_of_a_webhook_target(policies, workloads):
    reaching = {
        name for name in EVERY_POD
        if kube.egress_allowed(policies, labels(workloads, name), ip=INTERNET_HOST, port=8443)
    }
    assert reaching == {"webhooks"}


@pytest.mark.parametrize("name", EVERY_POD)
def test_no_pod_reaches_the_cloud_metadata_endpoint(policies, workloads, name):
    for port in (80, 443):
        assert not kube.egress_allowed(policies, labels(workloads, name), ip=METADATA_HOST,
                                       port=port)
