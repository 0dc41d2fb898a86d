"""Campaign definitions from a request body, with every refusal naming its field."""

from __future__ import annotations

import re
from typing import Any

from memberflow_platform.problems import Problem
from pydantic import ValidationError

from campaign_svc.domain import CampaignDefinition

# Cross-field rules put the field at fault in front of their message: "audience.tiers: ..."
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.+)$", re.DOTALL)


def field_errors(error: ValidationError) -> list[dict[str, str]]:
    """pydantic errors as [{field, message}], the field as a dotted path from the body."""
    errors = []
    for item in error.errors():
        path = [str(part) for part in item["loc"]]
        message = str(item["msg"]).removeprefix("Value error, ")
        named = _FIELD_PREFIX.match(message)
        if named and item["type"] == "value_error":
            path.append(named.group(1))
            message = named.group(2)
        errors.append({"field": ".".join(path) or "body", "message": message})
    return errors


def parse_definition(document: dict[str, Any]) -> CampaignDefinition:
    """The validated campaign, or a 422 listing each field at fault and why."""
    try:
        return CampaignDefinition.model_validate(document)
    except ValidationError as error:
        errors = field_errors(error)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise Problem(422, detail, code="validation-error", errors=errors) from None
