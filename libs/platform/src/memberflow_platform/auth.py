"""Bearer JWT authentication and scope checks (DESIGN.md §5).

Scopes: `member:self` (a member's app: only that member, whose id is the token subject),
`storefront` (server to server) and `ops` (administration). A missing, malformed or
expired token is 401; a valid token without the right scope or member is 403.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt
from fastapi import Request

from memberflow_platform.problems import Problem

MEMBER_SELF = "member:self"
STOREFRONT = "storefront"
OPS = "ops"
ALL_SCOPES = frozenset({MEMBER_SELF, STOREFRONT, OPS})
# Verified tokens remembered per verifier (a storefront reuses its token for many requests):
# the signature and claims check is most of a hot read's auth cost.
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str]

    @property
    def member_id(self) -> UUID | None:
        """The member a `member:self` token speaks for."""
        if MEMBER_SELF not in self.scopes:
            return None
        try:
            return UUID(self.subject)
        except ValueError:
            return None

    def can_act_for(self, member_id: UUID) -> bool:
        return bool(self.scopes & {STOREFRONT, OPS}) or self.member_id == member_id


@dataclass(frozen=True)
class TokenVerifier:
    secret: str
    issuer: str
    audience: str
    # token -> (principal, exp): only tokens that passed the full check are remembered,
    # keyed by the whole signed string; `exp` is checked against the clock on every use.
    _verified: OrderedDict[str, tuple[Principal, int]] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            # PyJWT's rule without leeway: expired once exp <= now.
            if expires > time.time():
                self._verified.move_to_end(token)
                return principal
            self._verified.pop(token, None)
            raise _unauthorized("token expired")
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("token expired") from None
        except jwt.PyJWTError as error:
            raise _unauthorized(f"invalid token: {error}") from None
        scopes = frozenset(str(claims.get("scope", "")).split()) & ALL_SCOPES
        principal = Principal(subject=str(claims["sub"]), scopes=scopes)
        self._verified[token] = (principal, int(claims["exp"]))
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def issue(
        self,
        subject: str,
        scopes: Iterable[str],
        ttl: timedelta = timedelta(hours=1),
        now: datetime | None = None,
    ) -> str:
        """Sign a token (demo data, tests and local tooling; production uses an IdP)."""
        issued = now or datetime.now(UTC)
        claims = {
            "sub": subject,
            "scope": " ".join(sorted(scopes)),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "exp": issued + ttl,
        }
        return jwt.encode(claims, self.secret, algorithm="HS256")


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, detail, code="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="memberflow"'}
    )


def authenticate(request: Request) -> Principal:
    """The principal of the request's bearer token; 401 when it is missing or invalid."""
    header = request.headers.get("authorization", "")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token:
        raise _unauthorized("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(token.strip())


def require(*scopes: str) -> Callable[[Request], Awaitable[Principal]]:
    """FastAPI dependency: an authenticated principal holding at least one of `scopes`."""
    wanted = frozenset(scopes)

    async def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        if not principal.scopes & wanted:
            raise Problem(403, f"requires one of the scopes {sorted(wanted)}", code="forbidden")
        return principal

    return dependency


def ensure_member_access(principal: Principal, member_id: UUID) -> None:
    """403 unless the principal may act for this member (a member only for itself)."""
    if not principal.can_act_for(member_id):
        raise Problem(403, "a member token may only access its own member", code="forbidden")
