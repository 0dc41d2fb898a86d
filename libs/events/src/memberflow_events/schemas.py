"""Generate JSON Schemas and an AsyncAPI 3 document from the payload models.

python -m memberflow_events.schemas docs/events           # write
python -m memberflow_events.schemas docs/events --check   # fail if stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from memberflow_events.envelope import Envelope, EventPayload
from memberflow_events.registry import PAYLOAD_MODELS
from memberflow_events.topics import BUSINESS_TOPICS


def event_schema(model: type[EventPayload]) -> dict[str, Any]:
    """JSON Schema of a whole record value: the envelope with this type's payload."""
    envelope = Envelope.model_json_schema(mode="serialization")
    payload = model.model_json_schema(mode="serialization")
    definitions = {**envelope.pop("$defs", {}), **payload.pop("$defs", {})}
    definitions.pop("EventPayload", None)
    properties = dict(envelope["properties"])
    properties["type"] = {"const": model.event_type, "type": "string"}
    properties["version"] = {"const": model.event_version, "type": "integer"}
    properties["payload"] = payload
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://memberflow.dev/events/{model.event_type}.v{model.event_version}.json",
        "title": f"{model.event_type} v{model.event_version}",
        "description": model.description,
        "type": "object",
        "properties": properties,
        "required": envelope["required"],
        "additionalProperties": False,
        "x-topic": model.topic,
    }
    if definitions:
        schema["$defs"] = definitions
    return schema


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in BUSINESS_TOPICS:
        channels[topic] = {"address": topic, "messages": {}}
    for (event_type, version), model in sorted(PAYLOAD_MODELS.items()):
        name = f"{event_type.replace('.', '_')}_v{version}"
        messages[name] = {
            "name": event_type,
            "title": f"{event_type} v{version}",
            "summary": model.description,
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {
                    "type": {"const": event_type},
                    "version": {"const": str(version)},
                    "event_id": {"type": "string", "format": "uuid"},
                },
            },
            "payload": {"$ref": f"schemas/{event_type}.v{version}.json"},
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "description": "member_id, or order_id for guest orders",
                    }
                }
            },
        }
        channels[model.topic]["messages"][name] = {"$ref": f"#/components/messages/{name}"}
    for topic in BUSINESS_TOPICS:
        operations[f"publish_{topic}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [
                {"$ref": f"#/channels/{topic}/messages/{m}"} for m in channels[topic]["messages"]
            ],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "memberflow events",
            "version": "1.0.0",
            "description": "Every event memberflow services and external order systems exchange. "
            "Generated from libs/events; do not edit by hand.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render(directory: Path) -> dict[Path, str]:
    files = {
        directory / "schemas" / f"{event_type}.v{version}.json": _json(event_schema(model))
        for (event_type, version), model in PAYLOAD_MODELS.items()
    }
    files[directory / "asyncapi.json"] = _json(asyncapi_document())
    return files


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def stale_files(directory: Path) -> list[Path]:
    return [
        path
        for path, content in render(directory).items()
        if not path.exists() or path.read_text() != content
    ]


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else Path("docs/events")
    if "--check" in argv:
        stale = stale_files(directory)
        for path in stale:
            print(f"stale: {path} (run `make schemas`)", file=sys.stderr)
        return 1 if stale else 0
    for path, content in render(directory).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    print(f"wrote {len(PAYLOAD_MODELS)} schemas and asyncapi.json to {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
