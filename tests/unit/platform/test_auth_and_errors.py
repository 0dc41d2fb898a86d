"""Pure parts of the platform: tokens, scopes, transient-error classification."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.errors import KafkaConnectionError, UnknownTopicOrPartitionError
from memberflow_events.errors import is_transient
from memberflow_platform import auth
from memberflow_platform.auth import MEMBER_SELF, OPS, STOREFRONT, TokenVerifier
from memberflow_platform.problems import Problem
from sqlalchemy import exc as sa_exc

VERIFIER = TokenVerifier(secret="s" * 40, issuer="memberflow", audience="memberflow")


def test_a_member_token_speaks_only_for_its_member() -> None:
    member = uuid.uuid4()
    principal = VERIFIER.verify(VERIFIER.issue(str(member), [MEMBER_SELF]))
    assert principal.member_id == member
    assert principal.can_act_for(member)
    assert not principal.can_act_for(uuid.uuid4())


@pytest.mark.parametrize("scope", [STOREFRONT, OPS])
def test_server_scopes_act_for_any_member(scope: str) -> None:
    principal = VERIFIER.verify(VERIFIER.issue("shop-1", [scope]))
    assert principal.member_id is None
    assert principal.can_act_for(uuid.uuid4())


def test_unknown_scopes_are_dropped() -> None:
    assert VERIFIER.verify(VERIFIER.issue("x", ["admin", OPS])).scopes == {OPS}


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        (VERIFIER.issue("x", [OPS], now=datetime.now(UTC) - timedelta(hours=2)), "token expired"),
        (
            TokenVerifier("other" * 10, "memberflow", "memberflow").issue("x", [OPS]),
            "Signature verification failed",
        ),
        (TokenVerifier("s" * 40, "someone-else", "memberflow").issue("x", [OPS]), "Invalid issuer"),
        (
            TokenVerifier("s" * 40, "memberflow", "elsewhere").issue("x", [OPS]),
            "Audience doesn't match",
        ),
        ("a.b.c", "invalid token"),
    ],
)
def test_bad_tokens_are_401_with_the_reason(token: str, detail: str) -> None:
    with pytest.raises(Problem) as caught:
        VERIFIER.verify(token)
    assert caught.value.status == 401
    assert detail in caught.value.detail


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(secret="s" * 40, issuer="memberflow", audience="memberflow")
    token = verifier.issue("x", [OPS], ttl=timedelta(seconds=60))
    assert verifier.verify(token).scopes == {OPS}
    assert verifier.verify(token).scopes == {OPS}  # from the cache
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(Problem) as caught:
        verifier.verify(token)
    assert (caught.value.status, caught.value.detail) == (401, "token expired")


def test_a_tampered_token_is_not_taken_for_a_remembered_one() -> None:
    verifier = TokenVerifier(secret="s" * 40, issuer="memberflow", audience="memberflow")
    token = verifier.issue("x", [STOREFRONT])
    verifier.verify(token)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for _ in range(2):  # a failure is never remembered either
        with pytest.raises(Problem) as caught:
            verifier.verify(tampered)
        assert caught.value.status == 401


def test_remembered_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 3)
    verifier = TokenVerifier(secret="s" * 40, issuer="memberflow", audience="memberflow")
    for n in range(10):
        verifier.verify(verifier.issue(f"m{n}", [OPS]))
    assert len(verifier._verified) == 3


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _dbapi(sqlstate: str) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", None, _PgError(sqlstate))


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (KafkaConnectionError(), True),
        (_dbapi("08006"), True),  # connection failure
        (_dbapi("57P01"), True),  # admin shutdown
        (_dbapi("40001"), True),  # serialization failure
        (_dbapi("40P01"), True),  # deadlock
        (_dbapi("23505"), False),  # unique violation: retrying cannot help
        (_dbapi("22P02"), False),  # invalid input
        (ValueError("invariant violated"), False),
        (UnknownTopicOrPartitionError(), True),
    ],
)
def test_transient_errors_are_told_from_permanent_ones(
    error: BaseException, transient: bool
) -> None:
    assert is_transient(error) is transient
