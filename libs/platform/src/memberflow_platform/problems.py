"""RFC 9457 problem details: every error a client sees, with what is wrong and where."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from memberflow_events.errors import is_transient
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise from a route or a domain adapter to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _TITLES.get(status, "error").lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers


def not_found(what: str) -> Problem:
    return Problem(404, f"{what} not found", code="not-found")


def conflict(detail: str, code: str = "conflict") -> Problem:
    return Problem(409, detail, code=code)


def invalid(field: str, message: str) -> Problem:
    """422 naming the field at fault, in the same shape as request validation errors."""
    return Problem(
        422,
        f"{field}: {message}",
        code="validation-error",
        errors=[{"field": field, "message": message}],
    )


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://memberflow.dev/problems/{problem.code}",
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
    }
    if problem.errors:
        body["errors"] = problem.errors
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


def _field_of(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in {"body", "query", "path", "header"} and len(parts) > 1:
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "body"


def install_problem_handlers(
    app: FastAPI, authenticate: Callable[[Request], object] | None = None
) -> None:
    """Every error as problem+json. With `authenticate`, a request to /v1 that is both
    unauthenticated and malformed gets 401, not 422: FastAPI parses the body before it runs
    the auth dependency, and an anonymous caller should learn nothing about the API."""

    async def on_problem(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, Problem)
        return problem_response(request, error)

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        if authenticate is not None and request.url.path.startswith("/v1/"):
            try:
                authenticate(request)
            except Problem as unauthorized:
                return problem_response(request, unauthorized)
        errors = [
            {"field": _field_of(item["loc"]), "message": item["msg"]} for item in error.errors()
        ]
        detail = "; ".join(f"{item['field']}: {item['message']}" for item in errors[:5])
        return problem_response(
            request, Problem(422, detail, code="validation-error", errors=errors)
        )

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        headers = dict(error.headers) if error.headers else None
        return problem_response(
            request, Problem(error.status_code, str(error.detail), headers=headers)
        )

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        if is_transient(error):
            log.warning("dependency unavailable on %s: %r", request.url.path, error)
            unavailable = Problem(
                503, "a dependency is unavailable; retry shortly", headers={"Retry-After": "1"}
            )
            return problem_response(request, unavailable)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, Problem(500, "unexpected error; it has been logged"))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
