"""deploy/Dockerfile builds one non-root image holding every package the project lists."""

from __future__ import annotations

import json
import tomllib

from tests.unit.deploy import kube

DOCKERFILE = kube.REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = kube.REPO / "deploy" / "Dockerfile.dockerignore"


def instructions(name: str) -> list[str]:
    """Arguments of every `name` instruction, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [
        line.split(None, 1)[1] for line in text.splitlines() if line.split(None, 1)[:1] == [name]
    ]


def copied_sources() -> set[str]:
    """What the build copies from the context (not from an earlier stage)."""
    return {
        source.rstrip("/")
        for copy in instructions("COPY") if not copy.startswith("--from")
        for source in copy.split()[:-1]
    }


def test_image_is_based_on_python_311_slim():
    assert "ARG PYTHON_IMAGE=python:3.11-slim\n" in DOCKERFILE.read_text()
    assert set(instructions("FROM")) == {"${PYTHON_IMAGE}", "${PYTHON_IMAGE} AS build"}


def test_image_runs_terapi_as_the_pods_non_root_user(workloads):
    assert instructions("USER")[-1] == "10001:10001"
    assert json.loads(instructions("ENTRYPOINT")[-1]) == ["terapi"]
    for name, workload in workloads.items():
        assert kube.pod_spec(workload)["securityContext"]["runAsUser"] == 10001, name


def test_image_build_copies_every_package_folder_the_project_lists():
    pyproject = tomllib.loads((kube.REPO / "pyproject.toml").read_text())
    folders = pyproject["tool"]["setuptools"]["packages"]["find"]["where"]
    sources = copied_sources()
    assert {folder.split("/")[0] for folder in folders} <= sources
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= sources
    for source in sources:
        assert (kube.REPO / source).exists(), source


def test_build_context_holds_only_what_the_build_copies():
    """The local virtualenv, git history and real secrets never reach the image builder."""
    lines = [ln for ln in DOCKERIGNORE.read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == copied_sources()
