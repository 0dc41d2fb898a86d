"""Authorization matrix: every route of every service against every kind of caller.

DESIGN.md §5: bearer JWT with the scopes `member:self` (only the member's own data),
`storefront` (server to server) and `ops` (admin); 401 and 403 are distinct; a member can
never read another member. The per-service documents (docs/api/*.md) say which scope may
call which route; POLICY below is that table, written out once for all five services.

The routes are enumerated from each app itself, so a new route fails
`test_every_route_is_classified` until it is added to POLICY (or, with a reason, to
PUBLIC), and a POLICY row whose route is gone fails too. Each classified route then gets:

- no token, an expired token (every scope), garbage, a token signed with another key,
  another issuer or audience, an unsigned (`alg: none`) token, a valid token sent with a
  scheme other than Bearer, an empty bearer → 401 problem+json with `WWW-Authenticate:
  Bearer`;
- every principal the table does not allow (and a token without any scope) → 403
  problem+json;
- on routes about one member (`{member_id}` in the path, or `member_id` in the body), a
  `member:self` token of another member → 403;
- every principal the table allows → neither 401 nor 403 (404, 409, 422, 200 are fine:
  the auth gate let the request through).
- with invalid path values and no body, query or Idempotency-Key, no token is still 401
  and a refused principal still 403: authentication and scope come before validation.

tests/integration/member_svc/test_authorization.py stays: it also checks that refused
requests wrote nothing and the exact statuses of a member's own requests.

Each service runs once per module (its own database and topics) against the real
infrastructure.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from campaign_svc.domain_coupons import generate_coupon_code
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from memberflow_platform.auth import MEMBER_SELF, OPS, STOREFRONT, TokenVerifier

from tests.support import (
    PG_PORT,
    bearer,
    build_service_app,
    create_test_database,
    delete_topics,
    drop_test_databases,
    running_service,
)

pytestmark = pytest.mark.infra

MEMBER = "member:self"  # a member token whose subject is the member the request is about
SHOP = "storefront"
ADMIN = "ops"
PRINCIPALS = (MEMBER, SHOP, ADMIN)
NO_SCOPE = "no-scope"  # a valid, unexpired token that carries no known scope
SCOPE_OF = {MEMBER: MEMBER_SELF, SHOP: STOREFRONT, ADMIN: OPS}

RouteKey = tuple[str, str, str]  # (service, method, path template)

# ---------------------------------------------------------------------------- the table

ANY = frozenset({MEMBER, SHOP, ADMIN})
SYSTEM = frozenset({SHOP, ADMIN})
OPS_ONLY = frozenset({ADMIN})

# Who may call what (docs/api/<service>.md, "Who may call what" / "Authorisation").
POLICY: dict[RouteKey, frozenset[str]] = {
    # member-svc: storefront acts on any member but may not erase; member only itself.
    ("member-svc", "POST", "/v1/members"): SYSTEM,
    ("member-svc", "GET", "/v1/members"): SYSTEM,
    ("member-svc", "GET", "/v1/members/by-referral-code/{code}"): SYSTEM,
    ("member-svc", "GET", "/v1/members/{member_id}"): ANY,
    ("member-svc", "PATCH", "/v1/members/{member_id}"): ANY,
    ("member-svc", "GET", "/v1/members/{member_id}/consents"): ANY,
    ("member-svc", "PUT", "/v1/members/{member_id}/consents/{channel}"): ANY,
    ("member-svc", "POST", "/v1/members/{member_id}/activities"): ANY,
    ("member-svc", "POST", "/v1/members/{member_id}/feedback"): ANY,
    ("member-svc", "GET", "/v1/members/{member_id}/export"): ANY,
    ("member-svc", "DELETE", "/v1/members/{member_id}"): frozenset({MEMBER, ADMIN}),
    # points-svc: adjustments and reconciliation are ops only.
    ("points-svc", "GET", "/v1/members/{member_id}/balance"): ANY,
    ("points-svc", "GET", "/v1/members/{member_id}/history"): ANY,
    ("points-svc", "POST", "/v1/members/{member_id}/redemptions"): ANY,
    ("points-svc", "POST", "/v1/members/{member_id}/adjustments"): OPS_ONLY,
    ("points-svc", "GET", "/v1/ops/reconciliation"): OPS_ONLY,
    # tier-svc: a member's tier for anyone entitled to it; the ladder is ops only.
    ("tier-svc", "GET", "/v1/members/{member_id}/tier"): ANY,
    ("tier-svc", "GET", "/v1/tiers"): OPS_ONLY,
    ("tier-svc", "PUT", "/v1/tiers"): OPS_ONLY,
    ("tier-svc", "POST", "/v1/tiers"): OPS_ONLY,
    ("tier-svc", "GET", "/v1/tiers/distribution"): OPS_ONLY,
    ("tier-svc", "GET", "/v1/tiers/{code}"): OPS_ONLY,
    ("tier-svc", "PATCH", "/v1/tiers/{code}"): OPS_ONLY,
    ("tier-svc", "DELETE", "/v1/tiers/{code}"): OPS_ONLY,
    # campaign-svc: campaigns are ops; coupons are shopping (member itself, storefront),
    # an operator may list a member's coupons but does not validate or redeem them.
    ("campaign-svc", "POST", "/v1/campaigns"): OPS_ONLY,
    ("campaign-svc", "GET", "/v1/campaigns"): OPS_ONLY,
    ("campaign-svc", "GET", "/v1/campaigns/{campaign_id}"): OPS_ONLY,
    ("campaign-svc", "PATCH", "/v1/campaigns/{campaign_id}"): OPS_ONLY,
    ("campaign-svc", "DELETE", "/v1/campaigns/{campaign_id}"): OPS_ONLY,
    ("campaign-svc", "GET", "/v1/members/{member_id}/coupons"): ANY,
    ("campaign-svc", "POST", "/v1/coupons/validate"): frozenset({MEMBER, SHOP}),
    ("campaign-svc", "POST", "/v1/coupons/redeem"): frozenset({MEMBER, SHOP}),
    # analytics-svc: ops everywhere; a member's RFM and CLV also for a storefront, never
    # for the member itself (an internal valuation, docs/api/analytics-svc.md).
    ("analytics-svc", "GET", "/v1/kpis"): OPS_ONLY,
    ("analytics-svc", "GET", "/v1/kpis/summary"): OPS_ONLY,
    ("analytics-svc", "GET", "/v1/tiers/distribution"): OPS_ONLY,
    ("analytics-svc", "GET", "/v1/rfm/segments"): OPS_ONLY,
    ("analytics-svc", "GET", "/v1/members/{member_id}/rfm"): SYSTEM,
    ("analytics-svc", "GET", "/v1/clv/model"): OPS_ONLY,
    ("analytics-svc", "GET", "/v1/members/{member_id}/clv"): SYSTEM,
    ("analytics-svc", "GET", "/v1/clv/distribution"): OPS_ONLY,
    ("analytics-svc", "GET", "/v1/campaigns"): OPS_ONLY,
    ("analytics-svc", "GET", "/v1/campaigns/{campaign_id}/uplift"): OPS_ONLY,
    ("analytics-svc", "POST", "/v1/ops/rebuild"): OPS_ONLY,
    ("analytics-svc", "POST", "/v1/ops/jobs/{job}/run"): OPS_ONLY,
}

# Routes that answer without a token, on purpose. Nothing else may be left out of POLICY.
# - /healthz, /readyz, /metrics: probes and Prometheus scraping (DESIGN.md §5); they carry
#   no member data, and kubelets and scrapers hold no JWT (deploy/k8s probes).
# - /openapi.json, /docs, /docs/oauth2-redirect, /redoc: the API description FastAPI serves
#   (DESIGN.md §5 "Each service serves its OpenAPI at /docs").
PUBLIC_EVERYWHERE = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
    ("GET", "/docs"),
    ("HEAD", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("HEAD", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("HEAD", "/redoc"),
}
PUBLIC: dict[str, set[tuple[str, str]]] = {
    "member-svc": PUBLIC_EVERYWHERE,
    "points-svc": PUBLIC_EVERYWHERE,
    "tier-svc": PUBLIC_EVERYWHERE,
    "campaign-svc": PUBLIC_EVERYWHERE,
    # /dashboard is a static HTML page with no data in it; its script calls the /v1 API
    # with an ops token the user types in (docs/api/analytics-svc.md, "Authorisation":
    # "none for the page itself"). Every number it shows comes from ops-only routes above.
    "analytics-svc": PUBLIC_EVERYWHERE | {("GET", "/dashboard")},
}

# ---------------------------------------------------------------------------- the apps

_UNUSED_DB = f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/unused"


def build_app(service: str, database_url: str = _UNUSED_DB, topic_prefix: str = "") -> FastAPI:
    return build_service_app(service, database_url, topic_prefix)


SERVICES = ("member-svc", "points-svc", "tier-svc", "campaign-svc", "analytics-svc")


def routes_of(app: FastAPI) -> dict[tuple[str, str], bool]:
    """(method, path) of every route the app serves -> whether it is a FastAPI APIRoute."""
    found: dict[tuple[str, str], bool] = {}
    for context in iter_route_contexts(app.routes):
        assert context.path is not None, f"a route without a path: {context.route!r}"
        for method in context.methods or {"(any)"}:
            found[(method, context.path)] = isinstance(context.original_route, APIRoute)
    return found


# Enumerated once at collection: apps are cheap to build; nothing connects before startup.
ROUTES: dict[str, dict[tuple[str, str], bool]] = {s: routes_of(build_app(s)) for s in SERVICES}
# DELETEs last, so an allowed erase or tier removal runs after the routes that use them.
GUARDED: list[RouteKey] = sorted(
    (
        (service, method, path)
        for service, routes in ROUTES.items()
        for method, path in routes
        if (method, path) not in PUBLIC[service]
    ),
    key=lambda key: (key[0], key[1] == "DELETE", key[2], key[1]),
)

# ---------------------------------------------------------------------------- requests

TIERS = [
    {"code": "basic", "name": "Basic", "rank": 0, "threshold": 0},
    {"code": "silver", "name": "Silver", "rank": 1, "threshold": 100_000, "multiplier": "1.25"},
    {"code": "gold", "name": "Gold", "rank": 2, "threshold": 500_000, "multiplier": "1.5"},
    {"code": "diamond", "name": "Diamond", "rank": 3, "threshold": 2_000_000, "multiplier": "2"},
]
CAMPAIGN = {
    "name": "Gold welcome",
    "trigger": {"kind": "tier_changed", "to_tier": "gold"},
    "audience": {"consents": ["email"]},
    "actions": [
        {
            "kind": "coupon",
            "terms": {"kind": "percent", "value": 15, "min_spend_minor": 2000, "currency": "EUR"},
            "valid_days": 30,
        }
    ],
    "controls": {"frequency_cap": {"max_count": 1, "period_days": 30}},
}


# Well formed (its check character matches) but never issued: 404 / "unknown_code".
UNKNOWN_COUPON = generate_coupon_code(lambda n: 7)


def _basket(member_id: str) -> dict[str, Any]:
    return {
        "code": UNKNOWN_COUPON,
        "member_id": member_id,
        "basket_total_minor": 5000,
        "currency": "EUR",
    }


# A minimal, valid-looking body per route that takes one; `member_id` is the member the
# request is about (the same member as in the path).
BODIES: dict[RouteKey, Callable[[str], Any]] = {
    ("member-svc", "POST", "/v1/members"): lambda m: {"email": f"{uuid.uuid4().hex}@example.com"},
    ("member-svc", "PATCH", "/v1/members/{member_id}"): lambda m: {"first_name": "Ada"},
    ("member-svc", "PUT", "/v1/members/{member_id}/consents/{channel}"): lambda m: {
        "granted": True
    },
    ("member-svc", "POST", "/v1/members/{member_id}/activities"): lambda m: {"kind": "login"},
    ("member-svc", "POST", "/v1/members/{member_id}/feedback"): lambda m: {"nps_score": 9},
    ("points-svc", "POST", "/v1/members/{member_id}/redemptions"): lambda m: {"points": 1},
    ("points-svc", "POST", "/v1/members/{member_id}/adjustments"): lambda m: {
        "points": 5,
        "reason": "authorization matrix",
    },
    ("tier-svc", "PUT", "/v1/tiers"): lambda m: {"tiers": TIERS},
    ("tier-svc", "POST", "/v1/tiers"): lambda m: {
        "code": f"t{uuid.uuid4().hex[:8]}",
        "name": "Platinum",
        "rank": 9,
        "threshold": 9_000_000,
        "multiplier": "2.5",
    },
    ("tier-svc", "PATCH", "/v1/tiers/{code}"): lambda m: {"name": "Gold"},
    ("campaign-svc", "POST", "/v1/campaigns"): lambda m: CAMPAIGN,
    ("campaign-svc", "PATCH", "/v1/campaigns/{campaign_id}"): lambda m: {"status": "paused"},
    ("campaign-svc", "POST", "/v1/coupons/validate"): _basket,
    ("campaign-svc", "POST", "/v1/coupons/redeem"): lambda m: {**_basket(m), "order_id": "o-1"},
}
# Routes about one member whose member is in the body rather than the path.
MEMBER_IN_BODY = {
    ("campaign-svc", "POST", "/v1/coupons/validate"),
    ("campaign-svc", "POST", "/v1/coupons/redeem"),
}
QUERIES: dict[RouteKey, dict[str, str]] = {
    ("analytics-svc", "GET", "/v1/kpis"): {
        "from": "2026-01-01T00:00:00Z",
        "to": "2026-02-01T00:00:00Z",
    },
}


def about_one_member(key: RouteKey) -> bool:
    return "{member_id}" in key[2] or key in MEMBER_IN_BODY


# ---------------------------------------------------------------------------- running


@dataclass
class Service:
    name: str
    app: FastAPI
    client: httpx.AsyncClient
    member_id: str  # the member requests are about (registered, in member-svc)
    other_member_id: str  # another member (registered, in member-svc)
    referral_code: str

    def path_value(self, name: str) -> str:
        if name == "member_id":
            return self.member_id
        if name == "campaign_id":
            return "0193a8e4-6f1c-7c3e-9d2a-5b7e1f0c4d21"
        if name == "channel":
            return "email"
        if name == "job":
            return "rfm"
        if name == "code" and self.name == "member-svc":
            return self.referral_code
        if name == "code" and self.name == "tier-svc":
            return "gold"
        raise AssertionError(f"{self.name}: no test value for path parameter {{{name}}}")

    async def call(
        self, key: RouteKey, headers: dict[str, str], *, bare: bool = False
    ) -> httpx.Response:
        """The route with valid-looking input; `bare`: invalid path values, no body, no
        query, no Idempotency-Key (the auth gate must still answer first)."""
        _, method, template = key
        path = template
        for name in _path_parameters(template):
            path = path.replace(f"{{{name}}}", "-" if bare else self.path_value(name))
        if bare:
            return await self.client.request(method, path, headers=headers)
        make_body = BODIES.get(key)
        body = make_body(self.member_id) if make_body else None
        return await self.client.request(
            method,
            path,
            json=body,
            params=QUERIES.get(key),
            headers={"Idempotency-Key": uuid.uuid4().hex, **headers},
        )

    def token(self, principal: str, subject: str | None = None) -> dict[str, str]:
        """Headers of a valid token; a member token speaks for `subject` (default: ours)."""
        if principal == NO_SCOPE:
            return bearer(self.app, subject or self.member_id)
        if principal == MEMBER:
            return bearer(self.app, subject or self.member_id, MEMBER_SELF)
        return bearer(self.app, f"{principal}-matrix", SCOPE_OF[principal])


def _path_parameters(template: str) -> list[str]:
    return [part[1:-1] for part in template.split("/") if part.startswith("{")]


class Stack:
    """Starts each service on first use (its own database and topics), once per module."""

    def __init__(self, exits: contextlib.AsyncExitStack) -> None:
        self._exits = exits
        self._services: dict[str, Service] = {}
        self._lock = asyncio.Lock()
        self.databases: list[str] = []
        self.prefixes: list[str] = []
        self._members: tuple[str, str, str] | None = None

    async def get(self, name: str) -> Service:
        async with self._lock:
            if name not in self._services:
                self._services[name] = await self._start(name)
            return self._services[name]

    async def _start(self, name: str) -> Service:
        database, url = await create_test_database(name.replace("-", "_"))
        self.databases.append(database)
        prefix = f"t{uuid.uuid4().hex[:10]}."
        self.prefixes.append(prefix)
        app = build_app(name, url, prefix)
        client = await self._exits.enter_async_context(running_service(app))
        if name == "member-svc":
            member_id, other_id, code = await _register_two(app, client)
        else:
            member_id, other_id, code = str(uuid.uuid4()), str(uuid.uuid4()), ""
        return Service(name, app, client, member_id, other_id, code)


async def _register_two(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, str, str]:
    registered = []
    for _ in range(2):
        response = await client.post(
            "/v1/members",
            json={"email": f"{uuid.uuid4().hex}@example.com"},
            headers={
                **bearer(app, "storefront-matrix", STOREFRONT),
                "Idempotency-Key": uuid.uuid4().hex,
            },
        )
        assert response.status_code == 201, response.text
        registered.append(response.json())
    return registered[0]["id"], registered[1]["id"], registered[0]["referral_code"]


@pytest.fixture(scope="module")
async def stack(infra: None) -> AsyncIterator[Stack]:
    exits = contextlib.AsyncExitStack()
    services = Stack(exits)
    try:
        yield services
    finally:
        await exits.aclose()
        if services.databases:
            await drop_test_databases(services.databases)
        if services.prefixes:
            await delete_topics(services.prefixes)


# ---------------------------------------------------------------------------- credentials


def _claims(issuer: str, audience: str, subject: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "sub": subject,
        "scope": f"{MEMBER_SELF} {STOREFRONT} {OPS}",
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + timedelta(hours=1),
    }


def _signed(service: Service, *, secret: str = "", issuer: str = "", audience: str = "") -> str:
    verifier: TokenVerifier = service.app.state.token_verifier
    other = TokenVerifier(
        secret or verifier.secret, issuer or verifier.issuer, audience or verifier.audience
    )
    return other.issue(service.member_id, [MEMBER_SELF, STOREFRONT, OPS])


def _unauthenticated(service: Service, kind: str) -> dict[str, str]:
    """Headers that must not authenticate anyone; tokens carry every scope where signed."""
    verifier: TokenVerifier = service.app.state.token_verifier
    if kind == "no-token":
        return {}
    if kind == "expired":
        every = (MEMBER_SELF, STOREFRONT, OPS)
        return bearer(service.app, service.member_id, *every, ttl=timedelta(seconds=-30))
    if kind == "garbage":
        return {"Authorization": "Bearer not-a-jwt"}
    if kind == "empty-bearer":
        return {"Authorization": "Bearer "}
    if kind == "wrong-key":
        return {"Authorization": f"Bearer {_signed(service, secret='x' * 48)}"}
    if kind == "wrong-issuer":
        return {"Authorization": f"Bearer {_signed(service, issuer='someone-else')}"}
    if kind == "wrong-audience":
        return {"Authorization": f"Bearer {_signed(service, audience='someone-else')}"}
    if kind == "alg-none":
        claims = _claims(verifier.issuer, verifier.audience, service.member_id)
        return {"Authorization": f"Bearer {jwt.encode(claims, None, algorithm='none')}"}
    if kind == "not-bearer":
        return {"Authorization": f"Token {_signed(service)}"}
    raise AssertionError(kind)


UNAUTHENTICATED = (
    "no-token",
    "expired",
    "garbage",
    "empty-bearer",
    "wrong-key",
    "wrong-issuer",
    "wrong-audience",
    "alg-none",
    "not-bearer",
)

# ---------------------------------------------------------------------------- cases


def _id(key: RouteKey, who: str) -> str:
    service, method, path = key
    return f"{service} {method} {path} [{who}]"


def _cases(pick: Callable[[RouteKey], Iterator[str]]) -> list[Any]:
    return [pytest.param(key, who, id=_id(key, who)) for key in GUARDED for who in pick(key)]


def _forbidden(key: RouteKey) -> Iterator[str]:
    if key in POLICY:
        yield from (p for p in PRINCIPALS if p not in POLICY[key])
        yield NO_SCOPE


def _allowed(key: RouteKey) -> Iterator[str]:
    if key in POLICY:
        yield from (p for p in PRINCIPALS if p in POLICY[key])


def _other_member(key: RouteKey) -> Iterator[str]:
    if key in POLICY and MEMBER in POLICY[key] and about_one_member(key):
        yield "member:self of another member"


def _problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


# ---------------------------------------------------------------------------- tests


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_is_classified(service: str) -> None:
    """A new route must be put in POLICY (or PUBLIC, with a reason); stale rows fail."""
    served = ROUTES[service]
    tabled = {(m, p) for s, m, p in POLICY if s == service}
    unclassified = sorted(set(served) - tabled - PUBLIC[service])
    assert not unclassified, f"{service}: routes missing from POLICY: {unclassified}"
    stale = sorted((tabled | PUBLIC[service]) - set(served))
    assert not stale, f"{service}: POLICY/PUBLIC rows without a route: {stale}"
    both = sorted(tabled & PUBLIC[service])
    assert not both, f"{service}: routes both public and in POLICY: {both}"
    not_fastapi = sorted(r for r, is_api in served.items() if not is_api and r in tabled)
    assert not not_fastapi, f"{service}: guarded routes outside FastAPI routing: {not_fastapi}"
    for key in BODIES.keys() | QUERIES.keys() | MEMBER_IN_BODY:
        assert key[0] != service or key in POLICY, f"request spec for an unknown route: {key}"


@pytest.mark.parametrize("service", SERVICES)
async def test_public_routes_answer_without_a_token(stack: Stack, service: str) -> None:
    running = await stack.get(service)
    for method, path in sorted(PUBLIC[service]):
        response = await running.client.request(method, path)
        assert response.status_code == 200, (method, path, response.status_code)


@pytest.mark.parametrize(("key", "credential"), _cases(lambda key: iter(UNAUTHENTICATED)))
async def test_without_valid_credentials_it_is_401(
    stack: Stack, key: RouteKey, credential: str
) -> None:
    service = await stack.get(key[0])
    response = await service.call(key, _unauthenticated(service, credential))
    _problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def _before_validation(key: RouteKey) -> Iterator[str]:
    yield "no-token"
    yield from _forbidden(key)


@pytest.mark.parametrize(("key", "who"), _cases(_before_validation))
async def test_the_auth_gate_answers_before_input_validation(
    stack: Stack, key: RouteKey, who: str
) -> None:
    """Invalid path values, no body, query or Idempotency-Key: still 401/403, so a caller
    without the right token learns nothing about what the route accepts."""
    service = await stack.get(key[0])
    if who == "no-token":
        response = await service.call(key, {}, bare=True)
        _problem(response, 401)
    else:
        response = await service.call(key, service.token(who), bare=True)
        _problem(response, 403)


@pytest.mark.parametrize(("key", "principal"), _cases(_forbidden))
async def test_a_principal_the_table_does_not_allow_gets_403(
    stack: Stack, key: RouteKey, principal: str
) -> None:
    service = await stack.get(key[0])
    response = await service.call(key, service.token(principal))
    _problem(response, 403)


@pytest.mark.parametrize(("key", "principal"), _cases(_other_member))
async def test_a_member_token_of_another_member_gets_403(
    stack: Stack, key: RouteKey, principal: str
) -> None:
    service = await stack.get(key[0])
    response = await service.call(key, service.token(MEMBER, subject=service.other_member_id))
    _problem(response, 403)


@pytest.mark.parametrize(("key", "principal"), _cases(_allowed))
async def test_a_principal_the_table_allows_passes_the_auth_gate(
    stack: Stack, key: RouteKey, principal: str
) -> None:
    service = await stack.get(key[0])
    response = await service.call(key, service.token(principal))
    assert response.status_code not in (401, 403), (response.status_code, response.text)
    assert response.status_code < 500, (response.status_code, response.text)


def _takes_a_body(key: RouteKey) -> Iterator[str]:
    if key[1] in {"POST", "PUT", "PATCH"}:
        yield "no-token"


@pytest.mark.parametrize(("key", "who"), _cases(_takes_a_body))
async def test_malformed_json_without_a_token_is_401_not_422(
    stack: Stack, key: RouteKey, who: str
) -> None:
    """FastAPI parses a body before it runs dependencies; the problem handler still puts
    authentication first, so an anonymous caller cannot probe what a route accepts."""
    service = await stack.get(key[0])
    _, method, template = key
    path = template
    for name in _path_parameters(template):
        path = path.replace(f"{{{name}}}", service.path_value(name))
    response = await service.client.request(
        method, path, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    _problem(response, 401)
