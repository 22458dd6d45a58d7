"""deploy/k8s/reencrypt: the key-rotation Job runs like the migration Job, on the same key."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.unit.deploy import kube
from tests.unit.deploy.test_manifests import KUBERNETES_VERSION


@pytest.fixture(scope="module")
def reencryption(tmp_path_factory: pytest.TempPathFactory) -> list[kube.Doc]:
    """`kubectl kustomize deploy/k8s/reencrypt`, from a copy holding the example secrets."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render deploy/k8s with kustomize")
    tree = tmp_path_factory.mktemp("deploy") / "k8s"
    shutil.copytree(kube.K8S, tree, ignore=shutil.ignore_patterns("*.env"))
    for example in (tree / "config" / "secrets").glob("*.env.example"):
        example.with_suffix("").write_text(example.read_text())
    result = subprocess.run(  # noqa: S603  # fixed arguments, no shell
        [kubectl, "kustomize", str(tree / "reencrypt")], capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def job(reencryption: list[kube.Doc]) -> kube.Doc:
    (found,) = kube.of_kind(reencryption, "Job")
    return found


@pytest.fixture(scope="module")
def migration_job(migration: list[kube.Doc]) -> kube.Doc:
    (found,) = kube.of_kind(migration, "Job")
    return found


def test_every_rendered_object_is_valid_for_kubernetes(reencryption):
    validator = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed"
    )
    for doc in reencryption:
        validator.validate(doc, KUBERNETES_VERSION, strict=True)


def test_job_runs_keys_reencrypt_from_the_release_image(job, migration_job):
    (container,) = kube.containers(job)
    assert container["args"] == ["keys", "reencrypt"]
    assert container["image"] == kube.containers(migration_job)[0]["image"]
    assert kube.component(job) == "reencrypt"


def test_job_reads_the_database_and_the_key_ring_the_services_read(
    job, migration_job, reencryption, app
):
    assert kube.secrets_used(job) == kube.secrets_used(migration_job)
    holders = {s["metadata"]["name"] for s in kube.of_kind(reencryption, "Secret")
               if "TERAPI_ENCRYPTION_KEY" in s["data"]}
    assert len(holders) == 1 and holders <= kube.secrets_used(job)
    shared = {(d["kind"], d["metadata"]["name"]) for d in reencryption if d["kind"] != "Job"}
    # Same generated names: the Job reads the very Secret the rolled pods read.
    assert shared <= {(d["kind"], d["metadata"]["name"]) for d in app}


def test_job_pod_is_locked_down_like_the_migration_pod(job, migration_job):
    for part in ("securityContext", "automountServiceAccountToken", "enableServiceLinks",
                 "restartPolicy", "volumes"):
        assert kube.pod_spec(job)[part] == kube.pod_spec(migration_job)[part], part
    (container,) = kube.containers(job)
    (migrate,) = kube.containers(migration_job)
    assert container["securityContext"] == migrate["securityContext"]
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}


def test_job_reaches_postgresql_and_accepts_no_connection(job, policies):
    labels = kube.pod_labels(job)
    assert labels["app.kubernetes.io/part-of"] == "terapi"
    assert kube.egress_allowed(policies, labels, ip="10.20.30.40", port=5432)
    assert not kube.egress_allowed(policies, labels, ip="203.0.113.7", port=443)
    assert not kube.ingress_allowed(
        policies, labels, namespace={"kubernetes.io/metadata.name": "terapi"},
        source={"app.kubernetes.io/name": "terapi"}, port=3003, own_namespace=True,
    )
