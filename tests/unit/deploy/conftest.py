"""The rendered manifests, once per session, from a copy holding the example secrets."""

from __future__ import annotations

import shutil

import pytest

from tests.unit.deploy import kube


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[kube.Doc], list[kube.Doc]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render deploy/k8s with kustomize")
    return kube.render(tmp_path_factory.mktemp("deploy"), kubectl)


@pytest.fixture(scope="session")
def app(rendered: tuple[list[kube.Doc], list[kube.Doc]]) -> list[kube.Doc]:
    """`kubectl kustomize deploy/k8s`: the services."""
    return rendered[0]


@pytest.fixture(scope="session")
def migration(rendered: tuple[list[kube.Doc], list[kube.Doc]]) -> list[kube.Doc]:
    """`kubectl kustomize deploy/k8s/migrate`: the migration Job and what it shares."""
    return rendered[1]


@pytest.fixture(scope="session")
def deployments(app: list[kube.Doc]) -> dict[str, kube.Doc]:
    return {kube.component(d): d for d in kube.of_kind(app, "Deployment")}


@pytest.fixture(scope="session")
def workloads(deployments: dict[str, kube.Doc], migration: list[kube.Doc]) -> dict[str, kube.Doc]:
    """Every pod template: the five Deployments and the migration Job (as `migrate`)."""
    (job,) = kube.of_kind(migration, "Job")
    return {**deployments, kube.component(job): job}


@pytest.fixture(scope="session")
def policies(app: list[kube.Doc]) -> list[kube.Doc]:
    return kube.of_kind(app, "NetworkPolicy")
