"""REST API of campaign-svc under /v1: ops campaigns and coupons for storefronts and members."""

from __future__ import annotations

from fastapi import APIRouter

from campaign_svc import api_campaigns, api_coupons

router = APIRouter()
router.include_router(api_campaigns.router)
router.include_router(api_coupons.router)
