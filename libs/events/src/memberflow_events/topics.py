"""Topic names (DESIGN.md §2). A deployment-wide prefix isolates environments and tests."""

from __future__ import annotations

ORDERS = "orders"
MEMBERS = "members"
POINTS = "points"
TIERS = "tiers"
CAMPAIGNS = "campaigns"
ANALYTICS = "analytics"

BUSINESS_TOPICS: tuple[str, ...] = (ORDERS, MEMBERS, POINTS, TIERS, CAMPAIGNS, ANALYTICS)
SERVICES: tuple[str, ...] = (
    "member-svc",
    "points-svc",
    "tier-svc",
    "campaign-svc",
    "analytics-svc",
)


def dlq_topic(service: str) -> str:
    """Dead letters of one service's consumer."""
    return f"dlq.{service}"


def all_topics() -> list[str]:
    return [*BUSINESS_TOPICS, *(dlq_topic(service) for service in SERVICES)]


def physical(topic: str, prefix: str) -> str:
    """The broker-side name of a logical topic."""
    return f"{prefix}{topic}"
