"""deploy/k8s renders to valid Kubernetes objects that run Terapi safely and route it right."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.unit.deploy import kube

# A recent Kubernetes release whose schemas kubernetes-validate bundles.
KUBERNETES_VERSION = "1.33.0"
REPLICAS = {"gateway": 2, "vault": 2, "refresher": 2, "webhooks": 2, "logs": 1}
NEEDS_ENCRYPTION_KEY = {"gateway", "vault", "refresher", "migrate"}
PUBLIC_ROUTES = [
    ("/oauth/callback", "terapi-gateway"),
    ("/auth/api-key/openai", "terapi-gateway"),
    ("/connect/sessions", "terapi-gateway"),
    ("/sdk/terapi.js", "terapi-gateway"),
    ("/integrations", "terapi-vault"),
    ("/connections/user-42", "terapi-vault"),
    ("/environment", "terapi-vault"),
    ("/providers/github", "terapi-vault"),
    ("/logs/operations", "terapi-logs"),
]


def test_every_rendered_object_is_valid_for_kubernetes(app, migration):
    validator = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed"
    )
    errors = []
    for doc in app + migration:
        try:
            validator.validate(doc, KUBERNETES_VERSION, strict=True)
        except validator.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")
    assert errors == []


def test_each_service_runs_with_its_replica_count(deployments):
    assert {name: d["spec"]["replicas"] for name, d in deployments.items()} == REPLICAS


def test_each_deployment_runs_its_own_service_from_the_one_image(workloads):
    images = {c["image"] for w in workloads.values() for c in kube.containers(w)}
    assert len(images) == 1
    commands = {name: kube.containers(w)[0]["args"] for name, w in workloads.items()}
    assert commands == {name: ["run", name] for name in REPLICAS} | {"migrate": ["migrate"]}


def test_every_deployment_probes_readyz_for_readiness_and_healthz_for_liveness(deployments):
    for name, deployment in deployments.items():
        (container,) = kube.containers(deployment)
        port_names = {p["name"] for p in container["ports"]}
        probes = {
            kind: container[f"{kind}Probe"]["httpGet"]
            for kind in ("readiness", "liveness", "startup")
        }
        assert {k: p["path"] for k, p in probes.items()} == {
            "readiness": "/readyz", "liveness": "/healthz", "startup": "/healthz"
        }, name
        assert {p["port"] for p in probes.values()} <= port_names, name


def test_every_pod_runs_as_non_root_on_a_read_only_root_filesystem(workloads):
    for name, workload in workloads.items():
        pod = kube.pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for container in kube.containers(workload):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name


def test_every_container_has_cpu_and_memory_requests_and_limits(workloads):
    for name, workload in workloads.items():
        for container in kube.containers(workload):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) >= {"cpu", "memory"}, (name, bound)


def test_in_flight_work_finishes_before_the_pod_is_killed(deployments, app):
    (config,) = kube.of_kind(app, "ConfigMap")
    grace = float(config["data"]["TERAPI_SHUTDOWN_GRACE_SECONDS"])
    for name, deployment in deployments.items():
        (container,) = kube.containers(deployment)
        pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert pause + grace < kube.pod_spec(deployment)["terminationGracePeriodSeconds"], name


def test_deployments_leave_migrations_to_the_job(deployments):
    for name, deployment in deployments.items():
        (container,) = kube.containers(deployment)
        env = {var["name"]: var.get("value") for var in container["env"]}
        assert env["TERAPI_AUTO_MIGRATE"] == "false", name


def test_service_link_variables_cannot_override_settings(workloads):
    for name, workload in workloads.items():
        assert kube.pod_spec(workload)["enableServiceLinks"] is False, name


def test_encryption_key_reaches_only_vault_gateway_refresher_and_migration(app, workloads):
    holders = [s for s in kube.of_kind(app, "Secret") if "TERAPI_ENCRYPTION_KEY" in s["data"]]
    assert [set(s["data"]) for s in holders] == [{"TERAPI_ENCRYPTION_KEY"}]
    key_secret = holders[0]["metadata"]["name"]
    readers = {name for name, w in workloads.items() if key_secret in kube.secrets_used(w)}
    assert readers == NEEDS_ENCRYPTION_KEY


def test_every_referenced_secret_and_config_key_exists(app, migration, workloads):
    data = {
        (doc["kind"], doc["metadata"]["name"]): set(doc["data"])
        for doc in app + migration if doc["kind"] in ("Secret", "ConfigMap")
    }
    for name, workload in workloads.items():
        for container in kube.containers(workload):
            for var in container.get("env", []):
                for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    ref = var.get("valueFrom", {}).get(field)
                    if ref:
                        assert ref["key"] in data.get((kind, ref["name"]), set()), (name, ref)
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source["secretRef"]
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                assert (kind, ref["name"]) in data, (name, ref)


def test_every_service_selects_the_pods_of_one_deployment(app, deployments):
    for service in kube.of_kind(app, "Service"):
        selector = {"matchLabels": service["spec"]["selector"]}
        targets = [d for d in deployments.values() if kube.selects(selector, kube.pod_labels(d))]
        assert len(targets) == 1, service["metadata"]["name"]
        (container,) = kube.containers(targets[0])
        container_ports = {p["name"] for p in container["ports"]}
        container_ports |= {p["containerPort"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert service["spec"]["type"] == "ClusterIP"
            assert (port["port"], port["targetPort"] in container_ports) == (80, True)


def test_each_two_replica_deployment_has_a_disruption_budget(app, deployments):
    budgets = kube.of_kind(app, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        pods = kube.pod_labels(deployment)
        covering = [b for b in budgets if kube.selects(b["spec"]["selector"], pods)]
        # A budget on a single replica would block every node drain.
        expected = 1 if deployment["spec"]["replicas"] >= 2 else 0
        assert len(covering) == expected, name
        for budget in covering:
            assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"], name


def test_replicas_are_spread_across_nodes_and_zones(deployments):
    for name, deployment in deployments.items():
        constraints = kube.pod_spec(deployment)["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} == {
            "kubernetes.io/hostname", "topology.kubernetes.io/zone"
        }, name
        for constraint in constraints:
            assert kube.selects(constraint["labelSelector"], kube.pod_labels(deployment)), name


@pytest.mark.parametrize(("path", "service"), PUBLIC_ROUTES)
def test_ingress_routes_each_public_path_to_its_service(app, path, service):
    (ingress,) = kube.of_kind(app, "Ingress")
    host = ingress["spec"]["rules"][0]["host"]
    assert kube.route(ingress, host, path) == (service, "http")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/webhooks", "/refresh", "/"])
def test_ingress_exposes_no_other_path(app, path):
    (ingress,) = kube.of_kind(app, "Ingress")
    host = ingress["spec"]["rules"][0]["host"]
    assert kube.route(ingress, host, path) is None


def test_every_ingress_backend_is_a_port_of_an_existing_service(app):
    (ingress,) = kube.of_kind(app, "Ingress")
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            backend = entry["backend"]["service"]
            service = kube.named(app, "Service", backend["name"])
            assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_public_url_is_the_ingress_host_served_over_tls(app):
    (config,) = kube.of_kind(app, "ConfigMap")
    (ingress,) = kube.of_kind(app, "Ingress")
    public_url = urlsplit(config["data"]["TERAPI_PUBLIC_URL"])
    assert public_url.scheme == "https"
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [public_url.hostname]
    assert public_url.hostname in ingress["spec"]["tls"][0]["hosts"]


def test_everything_is_in_namespace_terapi_and_part_of_terapi(app, migration):
    for doc in app + migration:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "terapi", doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "terapi", doc["metadata"]["name"]
        template = doc.get("spec", {}).get("template")
        if template:
            assert template["metadata"]["labels"]["app.kubernetes.io/part-of"] == "terapi"


def test_namespace_enforces_the_restricted_pod_security_standard(app):
    namespace = kube.named(app, "Namespace", "terapi")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_migration_job_shares_the_services_settings_and_secrets(app, migration):
    shared = {(d["kind"], d["metadata"]["name"]) for d in migration if d["kind"] != "Job"}
    assert shared <= {(d["kind"], d["metadata"]["name"]) for d in app}
