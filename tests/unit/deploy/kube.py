"""Reading rendered Kubernetes manifests: rendering, label selectors, routes, network rules."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
SECRETS = K8S / "config" / "secrets"

Doc = dict[str, Any]


def render(copy_to: Path, kubectl: str) -> tuple[list[Doc], list[Doc]]:
    """Render the services and the migration Job from a copy whose secrets are the examples."""
    tree = copy_to / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("*.env"))
    for example in (tree / "config" / "secrets").glob("*.env.example"):
        example.with_suffix("").write_text(example.read_text())
    return _kustomize(kubectl, tree), _kustomize(kubectl, tree / "migrate")


def _kustomize(kubectl: str, folder: Path) -> list[Doc]:
    result = subprocess.run(  # noqa: S603  # fixed arguments, no shell
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize {folder} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(docs: Iterable[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: Iterable[Doc], kind: str, name: str) -> Doc:
    (found,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return found


def component(doc: Doc) -> str:
    return doc["metadata"]["labels"]["app.kubernetes.io/component"]


def pod_spec(workload: Doc) -> Doc:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: Doc) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def secrets_used(workload: Doc) -> set[str]:
    """Names of the Secrets a pod can read: env, envFrom and volumes."""
    names: set[str] = set()
    for container in containers(workload):
        for var in container.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                names.add(source["secretRef"]["name"])
    for volume in pod_spec(workload).get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    return names


def selects(selector: Doc | None, labels: dict[str, str]) -> bool:
    """LabelSelector semantics: an empty selector selects everything."""
    selector = selector or {}
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def route(ingress: Doc, host: str, path: str) -> tuple[str, str | int] | None:
    """The (service, port) an Ingress sends `host` + `path` to: the longest matching path."""
    best: tuple[int, Doc] | None = None
    for rule in ingress["spec"]["rules"]:
        if rule.get("host", host) != host:
            continue
        for entry in rule["http"]["paths"]:
            if _path_matches(entry["pathType"], entry["path"], path):
                length = len(entry["path"])
                if best is None or length > best[0]:
                    best = (length, entry["backend"]["service"])
    if best is None:
        return None
    port = best[1]["port"]
    return best[1]["name"], port.get("name", port.get("number"))


def _path_matches(path_type: str, declared: str, path: str) -> bool:
    if path_type == "Exact":
        return path == declared
    prefix = declared.rstrip("/")
    # Prefix matches whole path elements: /connect matches /connect/x, not /connections.
    return path == prefix or path.startswith(prefix + "/") or prefix == ""


def policies_for(policies: list[Doc], labels: dict[str, str], direction: str) -> list[Doc]:
    return [
        p for p in policies
        if selects(p["spec"]["podSelector"], labels) and direction in _policy_types(p["spec"])
    ]


def _policy_types(spec: Doc) -> list[str]:
    # Without policyTypes a policy isolates ingress, and egress too when it has egress rules.
    return spec.get("policyTypes") or ["Ingress"] + (["Egress"] if "egress" in spec else [])


def egress_allowed(
    policies: list[Doc], labels: dict[str, str], *, ip: str, port: int, protocol: str = "TCP"
) -> bool:
    """Whether a pod with `labels` may open a connection to an address outside the cluster."""
    applicable = policies_for(policies, labels, "Egress")
    if not applicable:
        return True
    return any(
        _ports_allow(rule.get("ports"), port, protocol) and _ip_peers_allow(rule.get("to"), ip)
        for policy in applicable
        for rule in policy["spec"].get("egress", [])
    )


def ingress_allowed(
    policies: list[Doc], labels: dict[str, str], *, namespace: dict[str, str],
    source: dict[str, str], port: int, own_namespace: bool = False,
) -> bool:
    """Whether a pod (`source` labels, in a namespace with `namespace` labels) may connect."""
    applicable = policies_for(policies, labels, "Ingress")
    if not applicable:
        return True
    return any(
        _ports_allow(rule.get("ports"), port, "TCP")
        and _pod_peers_allow(rule.get("from"), namespace, source, own_namespace)
        for policy in applicable
        for rule in policy["spec"].get("ingress", [])
    )


def _ports_allow(ports: list[Doc] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(
        entry.get("protocol", "TCP") == protocol
        and ("port" not in entry or entry["port"] <= port <= entry.get("endPort", entry["port"]))
        for entry in ports
    )


def _ip_peers_allow(peers: list[Doc] | None, ip: str) -> bool:
    if not peers:
        return True
    address = ipaddress.ip_address(ip)
    for peer in peers:
        block = peer.get("ipBlock")
        if block and address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        ):
            return True
    return False


def _pod_peers_allow(
    peers: list[Doc] | None, namespace: dict[str, str], source: dict[str, str],
    own_namespace: bool,
) -> bool:
    if not peers:
        return True
    for peer in peers:
        if "ipBlock" in peer:
            continue
        if "namespaceSelector" in peer:
            in_namespace = selects(peer["namespaceSelector"], namespace)
        else:
            in_namespace = own_namespace
        if in_namespace and selects(peer.get("podSelector"), source):
            return True
    return False
