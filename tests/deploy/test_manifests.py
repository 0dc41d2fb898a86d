"""Deploy files: deploy/validate.sh passes on the real files and rejects broken copies.

validate.sh renders the Kustomize overlays, validates every object (kubernetes-validate
--strict, vendored Strimzi/CloudNativePG schemas, project rules) and docker-compose.yml
(compose-spec schema and the compose binary's `config -q`). The negative cases prove the
validator is not a rubber stamp.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
VALIDATE = ROOT / "deploy" / "validate.sh"
SERVICES = {
    "member-svc": 8001,
    "points-svc": 8002,
    "tier-svc": 8003,
    "campaign-svc": 8004,
    "analytics-svc": 8005,
}

needs_kustomize = pytest.mark.skipif(
    not (ROOT / ".local" / "bin" / "kustomize").exists() and shutil.which("go") is None,
    reason="kustomize is not cached in .local/bin and there is no go toolchain to build it",
)


def run_validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(VALIDATE), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@needs_kustomize
@pytest.mark.timeout(900)  # a machine with empty Go caches builds two tools first
def test_validate_sh_passes_on_the_real_files() -> None:
    result = run_validate()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "deploy files valid" in result.stdout
    for overlay in ("dev", "prod"):
        assert re.search(rf"^ok +{overlay}\.yaml: \d+ objects", result.stdout, re.M), output


def _broken_k8s_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    k8s = tmp_path / "k8s"
    shutil.copytree(ROOT / "deploy" / "k8s", k8s)
    target = k8s / file
    text = target.read_text()
    assert old in text, f"{old!r} not in {file}"
    target.write_text(text.replace(old, new, 1))
    return k8s


@needs_kustomize
@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        pytest.param(
            "base/services/points-svc.yaml",
            "revisionHistoryLimit: 5",
            "revisionHistoryLimit: 5\n  replicaCount: 2",
            "Deployment/points-svc: spec: Additional properties are not allowed",
            id="unknown-field-in-deployment",
        ),
        pytest.param(
            "base/kafka/topics.yaml",
            "partitions: 6",
            'partitions: "six"',
            "KafkaTopic/orders: spec.partitions: 'six' is not of type 'integer'",
            id="kafkatopic-violates-strimzi-schema",
        ),
        pytest.param(
            "base/postgres/cluster.yaml",
            "storage:\n    size: 10Gi",
            "storage:\n    sise: 10Gi",
            "Cluster/memberflow-pg: spec.storage: Additional properties are not allowed",
            id="cluster-violates-cnpg-schema",
        ),
        pytest.param(
            "overlays/prod/kustomization.yaml",
            "path: /spec/maxReplicas\n        value: 6",
            "path: /spec/maxReplicas\n        value: 12",
            "maxReplicas 12 exceeds the 6 partitions",
            id="hpa-above-partition-count",
        ),
        pytest.param(
            "base/config.yaml",
            'MF_DB_POOL_SIZE: "3"',
            'MF_DB_POOL_SIZE: "5"',
            "Cluster/memberflow-pg: the services may open 560 connections",
            id="connections-above-max-connections",
        ),
        pytest.param(
            "base/services/tier-svc.yaml",
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
            "Deployment/tier-svc: container tier-svc: readOnlyRootFilesystem is not true",
            id="writable-root-filesystem",
        ),
    ],
)
def test_broken_manifest_is_rejected(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    k8s = _broken_k8s_copy(tmp_path, file, old, new)
    result = run_validate("--k8s-dir", str(k8s), "--skip-compose")
    assert result.returncode != 0, result.stdout
    assert expected in result.stdout, result.stdout + result.stderr


def test_compose_with_undefined_dependency_is_rejected(tmp_path: Path) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    old = "    kafka-init:\n      condition: service_completed_successfully\n"
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        text.replace(old, old + "    schema-registry:\n      condition: service_healthy\n", 1)
    )
    result = run_validate("--skip-k8s", "--compose-file", str(broken))
    assert result.returncode != 0, result.stdout
    assert 'undefined service "schema-registry"' in result.stderr


@pytest.mark.skipif(
    not (ROOT / ".local" / "bin" / "dockerfile-check").exists() and shutil.which("go") is None,
    reason="dockerfile-check is not cached in .local/bin and there is no go toolchain",
)
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "COPY --from=build /app /app",
            "COPY --from=builder /app /app",
            '"docker.io/library/builder:latest" is not pinned',
            id="copy-from-misspelt-stage",
        ),
        pytest.param(
            "WORKDIR /app/services/${SERVICE}",
            "WORKDIR /app/services/${SERVCE}",
            "UndefinedVar: Usage of undefined variable '$SERVCE'",
            id="undefined-build-arg",
        ),
        pytest.param(
            "COPY libs/ libs/",
            "COPY lib/ libs/",
            'COPY/ADD source "lib/" (lib) not in the build context',
            id="missing-copy-source",
        ),
        pytest.param(
            'CMD ["memberflow-service"]',
            "CMD memberflow-service",
            "JSONArgsRecommended",
            id="shell-form-cmd",
        ),
    ],
)
def test_broken_dockerfile_is_rejected(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = (ROOT / "services" / "Dockerfile").read_text()
    assert old in text
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace(old, new, 1))
    result = run_validate("--skip-k8s", "--skip-compose", "--dockerfile", str(broken))
    assert result.returncode != 0, result.stdout
    assert expected in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(("service", "port"), sorted(SERVICES.items()))
def test_dockerfile_builds_each_service(service: str, port: int) -> None:
    """One Dockerfile builds every service's image from SERVICE and PORT (no engine here
    to build them, so at least keep it consistent with the packages and the compose file)."""
    dockerfile = (ROOT / "services" / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    assert service in pyproject["project"]["scripts"]
    assert dockerfile.count("ARG SERVICE\n") == 2
    assert re.search(r"^EXPOSE \$\{PORT\}$", dockerfile, re.M)
    assert re.search(r"^\s+MF_HTTP_PORT=\$\{PORT\}", dockerfile, re.M)
    assert 'ln -s "/app/.venv/bin/${SERVICE}" /app/.venv/bin/memberflow-service' in dockerfile
    assert 'CMD ["memberflow-service"]' in dockerfile
    assert "uv sync --frozen --no-dev --package" in dockerfile
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert "/healthz" in dockerfile
    for src in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
        path = src.replace("${SERVICE}", service)
        assert (ROOT / path).exists(), f"COPY source {path} missing"

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][service]
    assert compose["build"]["dockerfile"] == "services/Dockerfile"
    assert compose["build"]["args"] == {"SERVICE": service, "PORT": str(port)}
    assert compose["environment"]["MF_HTTP_PORT"] == str(port)
    assert compose["environment"]["MF_SERVICE_NAME"] == service
