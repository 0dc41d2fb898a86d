"""The demo programme's campaigns: one of each kind DESIGN.md §4 names."""

from __future__ import annotations

import uuid
from typing import Any

CAMPAIGN_NAMESPACE = uuid.UUID("0b6f7a52-3c1e-4f0e-8d8b-1f4e9c2d7a61")


def _id(slug: str) -> str:
    """A fixed id per demo campaign, so loading twice finds the campaign already there."""
    return str(uuid.uuid5(CAMPAIGN_NAMESPACE, slug))


EUR_COUPON_10 = {"kind": "amount", "value": 1000, "min_spend_minor": 3000, "currency": "EUR"}

DEMO_CAMPAIGNS: list[dict[str, Any]] = [
    {
        "campaign_id": _id("demo-welcome"),
        "name": "Welcome: 200 bonus points and 10 EUR off the second order",
        "trigger": {"kind": "member_registered"},
        "actions": [
            {"kind": "bonus_points", "points": 200, "reason": "welcome"},
            {"kind": "coupon", "terms": EUR_COUPON_10, "valid_days": 30},
            {"kind": "message", "channel": "email", "template": "welcome"},
        ],
        "controls": {"control_share": "0.1"},
    },
    {
        "campaign_id": _id("demo-gold-upgrade"),
        "name": "Welcome to Gold: 15% off",
        "trigger": {"kind": "tier_changed", "to_tier": "gold", "directions": ["upgrade"]},
        "actions": [
            {
                "kind": "coupon",
                "terms": {
                    "kind": "percent",
                    "value": 15,
                    "max_discount_minor": 5000,
                    "currency": "EUR",
                },
                "valid_days": 30,
            },
            {"kind": "message", "channel": "email", "template": "gold_welcome"},
        ],
        "controls": {"frequency_cap": {"max_count": 1, "period_days": 30}},
    },
    {
        "campaign_id": _id("demo-win-back"),
        "name": "Win-back: 10 EUR for members at risk of churning",
        "trigger": {"kind": "churn_risk", "min_score": 0.7},
        "actions": [
            {"kind": "coupon", "terms": EUR_COUPON_10, "valid_days": 14},
            {"kind": "message", "channel": "email", "template": "we_miss_you"},
        ],
        "controls": {
            "frequency_cap": {"max_count": 1, "period_days": 90},
            "budget": {"unit": "coupons", "limit": 2000},
            "control_share": "0.2",
        },
    },
    {
        "campaign_id": _id("demo-birthday"),
        "name": "Birthday: 500 bonus points",
        "trigger": {"kind": "birthday"},
        "actions": [
            {"kind": "bonus_points", "points": 500, "reason": "birthday"},
            {"kind": "message", "channel": "push", "template": "happy_birthday"},
        ],
    },
    {
        "campaign_id": _id("demo-expiry-reminder"),
        "name": "Points expiring soon reminder",
        "trigger": {"kind": "points_expiring", "min_points": 100},
        "actions": [{"kind": "message", "channel": "email", "template": "points_expiring"}],
        "controls": {"frequency_cap": {"max_count": 1, "period_days": 30}},
    },
    {
        "campaign_id": _id("demo-third-purchase"),
        "name": "Third purchase: 300 bonus points",
        "trigger": {"kind": "nth_purchase", "n": 3},
        "actions": [{"kind": "bonus_points", "points": 300, "reason": "third purchase"}],
        "controls": {"budget": {"unit": "points", "limit": 1_000_000}, "control_share": "0.1"},
    },
]
