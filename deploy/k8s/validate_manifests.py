"""Validate rendered Kubernetes manifests offline.

Usage: validate_manifests.py --k8s-version 1.33.0 --schemas deploy/k8s/schemas RENDERED.yaml...

For every object in every rendered file (a multi-document YAML stream, as `kustomize build`
prints it):
- built-in kinds are validated by kubernetes-validate in strict mode (unknown fields are
  errors) against the pinned Kubernetes version; a kind it has no schema for is an error;
- Strimzi and CloudNativePG custom resources are validated against the JSON Schemas vendored
  under --schemas (converted from the operators' CRDs by schemas/crd_to_jsonschema.py; unknown
  fields are errors); a custom resource without a vendored schema is an error;
- project rules the schemas cannot express are checked (see check_policies).
Exits 1 and lists every problem when anything fails.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

CRD_GROUPS = ("kafka.strimzi.io", "postgresql.cnpg.io")
SERVICE_COMPONENT = "service"
# superuser_reserved_connections (3) and the operator's own (instance manager, monitoring).
RESERVED_CONNECTIONS = 10


def connections_per_replica(pool_size: int) -> int:
    """What one service replica may open (memberflow_platform.runtime.Runtime): the
    SQLAlchemy engine's pool plus its overflow (2 x MF_DB_POOL_SIZE), the read pool
    (MF_DB_POOL_SIZE) and the outbox relay's listening connection."""
    return 3 * pool_size + 1


def load_objects(path: Path) -> list[dict[str, Any]]:
    with path.open() as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def ident(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name')}"


class SchemaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[Path, jsonschema.protocols.Validator] = {}

    def validator_for(self, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
        group, _, version = api_version.partition("/")
        path = self.root / group / f"{kind.lower()}-{version}.json"
        if path not in self._cache:
            if not path.is_file():
                return None
            schema = json.loads(path.read_text())
            self._cache[path] = jsonschema.Draft202012Validator(schema)
        return self._cache[path]


def validate_schema(obj: dict[str, Any], k8s_version: str, store: SchemaStore) -> list[str]:
    api_version = str(obj.get("apiVersion", ""))
    kind = str(obj.get("kind", ""))
    if not api_version or not kind:
        return ["object without apiVersion/kind"]
    group = api_version.split("/")[0] if "/" in api_version else ""
    if group in CRD_GROUPS:
        validator = store.validator_for(api_version, kind)
        if validator is None:
            return [f"no vendored schema for {api_version} {kind} (see deploy/k8s/schemas)"]
        return [
            f"{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
            for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        ]
    try:
        kubernetes_validate.validate(obj, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path) or "<root>"
        return [f"{path}: {err.message}"]
    except SchemaNotFoundError as err:
        return [err.message]
    return []


def _containers(obj: dict[str, Any]) -> Iterable[dict[str, Any]]:
    return obj["spec"]["template"]["spec"].get("containers", [])


def _environment(obj: dict[str, Any], config_maps: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The workload's variables: its ConfigMaps' (envFrom), then its own (env)."""
    env: dict[str, Any] = {}
    for c in _containers(obj):
        for source in c.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref:
                env.update(config_maps.get(ref["name"], {}))
        env.update({e["name"]: e.get("value") for e in c.get("env", [])})
    return env


def _peak_replicas(dep: dict[str, Any], max_replicas: int) -> int:
    """Pods of a Deployment during a rollout at the HPA's maximum (maxSurge on top)."""
    surge = ((dep["spec"].get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        return max_replicas + -(-max_replicas * int(surge[:-1]) // 100)
    return max_replicas + int(surge)


def check_workload(obj: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    pod = obj["spec"]["template"]["spec"]
    pod_sc = pod.get("securityContext") or {}
    for c in _containers(obj):
        name = c.get("name")
        sc = c.get("securityContext") or {}
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe not in c:
                errors.append(f"container {name}: no {probe}")
        res = c.get("resources") or {}
        for part, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
            for key in keys:
                if key not in (res.get(part) or {}):
                    errors.append(f"container {name}: no resources.{part}.{key}")
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            errors.append(f"container {name}: runAsNonRoot is not true")
        if sc.get("readOnlyRootFilesystem") is not True:
            errors.append(f"container {name}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"container {name}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            errors.append(f"container {name}: capabilities.drop lacks ALL")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            errors.append(f"container {name}: seccompProfile is not RuntimeDefault")
    return errors


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    match = selector.get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def check_policies(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Project rules; returns (object, problem) pairs."""
    problems: list[tuple[str, str]] = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        meta = obj.get("metadata") or {}
        key = (obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))
        if key in seen:
            problems.append((ident(obj), "defined twice"))
        seen.add(key)
        by_kind.setdefault(obj.get("kind", ""), []).append(obj)

    for obj in by_kind.get("Deployment", []) + by_kind.get("StatefulSet", []):
        problems += [(ident(obj), p) for p in check_workload(obj)]

    topics = by_kind.get("KafkaTopic", [])
    event_logs = [
        t
        for t in topics
        if t["metadata"].get("labels", {}).get("memberflow.io/topic-kind") == "event-log"
    ]
    topic_names = {t["spec"].get("topicName", t["metadata"]["name"]) for t in topics}
    for t in event_logs:
        cfg = t["spec"].get("config") or {}
        if str(cfg.get("retention.ms")) != "-1" or cfg.get("cleanup.policy") != "delete":
            problems.append(
                (
                    ident(t),
                    "event-log topics need retention.ms=-1 and "
                    "cleanup.policy=delete (projections replay them)",
                )
            )
    partitions = [t["spec"].get("partitions", 1) for t in event_logs]
    min_partitions = min((n for n in partitions if isinstance(n, int)), default=None)

    databases = {d["spec"]["name"] for d in by_kind.get("Database", [])}
    for cluster in by_kind.get("Cluster", []):
        initdb = (cluster["spec"].get("bootstrap") or {}).get("initdb") or {}
        if "database" in initdb:
            databases.add(initdb["database"])

    services = [
        d
        for d in by_kind.get("Deployment", [])
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == SERVICE_COMPONENT
    ]
    if not services:
        problems.append(("<all>", "no service Deployments rendered"))
    config_maps = {c["metadata"]["name"]: c.get("data") or {} for c in by_kind.get("ConfigMap", [])}
    connections = 0
    for dep in services:
        name = dep["metadata"]["name"]
        pod_labels = dep["spec"]["template"]["metadata"].get("labels") or {}
        hpas = [
            h
            for h in by_kind.get("HorizontalPodAutoscaler", [])
            if h["spec"]["scaleTargetRef"].get("name") == name
            and h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
        ]
        if not hpas:
            problems.append((ident(dep), "no HorizontalPodAutoscaler"))
        elif "replicas" in dep["spec"]:
            problems.append((ident(dep), "sets spec.replicas although an HPA owns the count"))
        env = _environment(dep, config_maps)
        pool_size = int(env.get("MF_DB_POOL_SIZE") or 10)  # the services' default
        for hpa in hpas:
            max_r = hpa["spec"]["maxReplicas"]
            connections += _peak_replicas(dep, max_r) * connections_per_replica(pool_size)
            if hpa["spec"].get("minReplicas", 1) > max_r:
                problems.append((ident(hpa), "minReplicas > maxReplicas"))
            if min_partitions is not None and max_r > min_partitions:
                problems.append(
                    (
                        ident(hpa),
                        f"maxReplicas {max_r} exceeds the {min_partitions}"
                        " partitions of the event-log topics",
                    )
                )
        for kind, sel in (
            ("PodDisruptionBudget", lambda o: o["spec"].get("selector") or {}),
            ("NetworkPolicy", lambda o: o["spec"].get("podSelector") or {}),
            ("Service", lambda o: {"matchLabels": o["spec"].get("selector")}),
        ):
            if not any(_selects(sel(o), pod_labels) for o in by_kind.get(kind, [])):
                problems.append((ident(dep), f"no {kind} selects its pods"))
        if f"dlq.{name}" not in topic_names:
            problems.append((ident(dep), f"no KafkaTopic dlq.{name}"))
        url = env.get("MF_DATABASE_URL") or ""
        db = re.sub(r"^.*/", "", url)
        if not url.startswith("postgresql+asyncpg://") or db not in databases:
            problems.append(
                (
                    ident(dep),
                    f"MF_DATABASE_URL names database {db!r}, which no Cluster/Database creates",
                )
            )
        for var in ("MF_SERVICE_NAME", "MF_HTTP_PORT"):
            if var not in env:
                problems.append((ident(dep), f"no {var}"))
        if env.get("MF_SERVICE_NAME") != name:
            problems.append((ident(dep), "MF_SERVICE_NAME differs from the Deployment name"))
    for cluster in by_kind.get("Cluster", []):
        parameters = (cluster["spec"].get("postgresql") or {}).get("parameters") or {}
        limit = int(parameters.get("max_connections", 100))
        if connections + RESERVED_CONNECTIONS > limit:
            problems.append(
                (
                    ident(cluster),
                    f"the services may open {connections} connections (HPA maximum plus"
                    f" maxSurge, 3 x MF_DB_POOL_SIZE + 1 each) and {RESERVED_CONNECTIONS} are"
                    f" reserved: more than max_connections {limit}",
                )
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k8s-version", required=True)
    parser.add_argument("--schemas", type=Path, required=True)
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()
    store = SchemaStore(args.schemas)
    failed = False
    for path in args.files:
        objects = load_objects(path)
        errors = [
            (ident(o), e) for o in objects for e in validate_schema(o, args.k8s_version, store)
        ]
        try:
            errors += check_policies(objects)
        except (KeyError, TypeError, AttributeError, IndexError) as err:
            errors.append(
                (
                    "<all>",
                    f"project rules could not be checked ({err!r}); fix the schema errors first",
                )
            )
        kinds = sorted({str(o.get("kind")) for o in objects})
        if errors:
            failed = True
            for where, what in errors:
                print(f"ERROR {path.name}: {where}: {what}")
        print(
            f"{'FAIL' if errors else 'ok  '} {path.name}: {len(objects)} objects "
            f"({', '.join(kinds)}), {len(errors)} problem(s)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
