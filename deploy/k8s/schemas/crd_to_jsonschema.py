"""Convert CustomResourceDefinition openAPIV3Schema blocks to strict JSON Schema files.

Usage: crd_to_jsonschema.py OUT_DIR CRD.yaml [CRD.yaml ...]

Writes OUT_DIR/<group>/<kind lower>-<version>.json for every served version.

The conversion mirrors what the API server does with a structural schema, made strict:
- objects that declare ``properties`` and neither ``additionalProperties`` nor
  ``x-kubernetes-preserve-unknown-fields`` reject unknown fields (the API server would
  silently prune them; a typo must fail validation instead);
- ``x-kubernetes-int-or-string`` becomes ``integer`` or ``string``;
- ``nullable: true`` also admits ``null``;
- ``apiVersion`` and ``kind`` are pinned to the CRD's group/version and kind, and
  ``metadata.name`` is required;
- descriptions are dropped to keep the vendored files small. CEL rules
  (``x-kubernetes-validations``) cannot be evaluated offline and are dropped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

DROP = {
    "description",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-embedded-resource",
}


def convert(node: Any) -> Any:
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    for key, value in node.items():
        if key in DROP or key == "x-kubernetes-preserve-unknown-fields":
            continue
        if key == "properties":
            out[key] = {name: convert(sub) for name, sub in value.items()}
        elif key in {"additionalProperties", "items", "not", "allOf", "anyOf", "oneOf"}:
            out[key] = convert(value)
        elif key == "nullable":
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("x-kubernetes-int-or-string", None)
        out.pop("type", None)
        out["type"] = ["integer", "string"]
    if "properties" in node and "additionalProperties" not in node and not preserve:
        out["additionalProperties"] = False
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    return out


def main() -> int:
    out_dir = Path(sys.argv[1])
    for crd_path in sys.argv[2:]:
        with open(crd_path) as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d]
        for crd in docs:
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = convert(version["schema"]["openAPIV3Schema"])
                props = schema.setdefault("properties", {})
                props["apiVersion"] = {"const": f"{group}/{version['name']}"}
                props["kind"] = {"const": kind}
                props["metadata"] = {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "minLength": 1}},
                }
                schema["required"] = sorted(
                    {*schema.get("required", []), "apiVersion", "kind", "metadata"}
                )
                schema.pop("additionalProperties", None)
                schema["additionalProperties"] = False
                doc = {
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "title": f"{kind} {group}/{version['name']}",
                    **schema,
                }
                target = out_dir / group / f"{kind.lower()}-{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
                print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
