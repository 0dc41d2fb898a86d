"""Telling transient failures (retry later) from permanent ones (dead-letter now)."""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError, KafkaError
from asyncpg.exceptions import ConnectionDoesNotExistError
from sqlalchemy import exc as sa_exc

# PostgreSQL SQLSTATE classes and codes that mean "try again", not "this event is bad":
# connection exceptions, serialization failure, deadlock, insufficient resources,
# operator intervention (admin shutdown, cannot connect now).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57P")
_TRANSIENT_SQLSTATES = {"40001", "40P01"}


def is_transient(error: BaseException) -> bool:
    """True when retrying the same work later can succeed."""
    if isinstance(error, OSError | TimeoutError | ConnectionError | KafkaConnectionError):
        return True
    if isinstance(error, KafkaError):
        return bool(getattr(error, "retriable", False))
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return _transient_sqlstate(error.orig) or _transient_sqlstate(error.__cause__)
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    # The raw asyncpg pool of the hot read paths raises the driver's own errors.
    if isinstance(error, ConnectionDoesNotExistError) or (
        getattr(error, "sqlstate", None) and _transient_sqlstate(error)
    ):
        return True
    cause = error.__cause__
    return cause is not None and cause is not error and is_transient(cause)


def _transient_sqlstate(error: BaseException | None) -> bool:
    state = getattr(error, "sqlstate", None) or getattr(
        getattr(error, "__cause__", None), "sqlstate", None
    )
    if not isinstance(state, str):
        return isinstance(error, OSError | ConnectionError)
    return state in _TRANSIENT_SQLSTATES or state.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
