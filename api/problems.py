"""Errors as RFC 7807 ``application/problem+json``, from one place.

Every error the API returns — a failed validation, a missing key, an unknown feature, an input
the science code refuses — is a problem document: ``type``, ``title``, ``status``, ``detail`` and,
for bad input, ``invalid-params`` naming each offending field (``[{"name": "lat", "reason": ...}]``,
the extension RFC 7807 itself shows). Routes raise :class:`Problem` (or let
:class:`vesselwatch.errors.InputError` escape); :func:`install_problem_handlers` turns everything
into documents, so a client never has to parse two error formats and bad input is never a 500.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from vesselwatch.errors import InputError, ProductError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class InvalidParam(BaseModel):
    """One offending request field."""

    name: str = Field(description="Dotted location of the field, e.g. ``lat`` or ``points.3.1``.")
    reason: str


class ProblemDocument(BaseModel):
    """RFC 7807 problem details (the schema of every error response)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = Field(None, alias="invalid-params")


#: Responses to declare in OpenAPI on routes that can fail with bad input.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDocument, "content": {PROBLEM_JSON: {}}, "description": HTTPStatus(status).phrase}
    for status in (400, 401, 403, 404, 413, 415, 422)
}


class Problem(Exception):
    """Raise to answer with a problem document.

    Parameters
    ----------
    status
        HTTP status code.
    detail
        Human-readable explanation of this occurrence.
    invalid_params
        ``(field, reason)`` pairs naming the offending input fields.
    headers
        Extra response headers (e.g. ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        invalid_params: Sequence[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.invalid_params = list(invalid_params)
        self.headers = headers
        self.title = title


def problem_response(
    request: Request | None,
    status: int,
    detail: str | None,
    *,
    invalid_params: Sequence[tuple[str, str]] = (),
    headers: dict[str, str] | None = None,
    title: str | None = None,
) -> JSONResponse:
    """A ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    if invalid_params:
        body["invalid-params"] = [{"name": name, "reason": reason} for name, reason in invalid_params]
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(location: Sequence[Any]) -> str:
    """``("query", "lat")`` → ``"lat"``; ``("body", "points", 3, 1)`` → ``"points.3.1"``."""
    parts = [str(part) for part in location]
    if parts and parts[0] in {"query", "path", "header", "cookie", "body"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    value = error.get("input")
    if isinstance(value, (int, float, str)) and not isinstance(value, bool) and len(str(value)) <= 80:
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        message = f"{message} (got {value!r})"
    return message


async def _validation_handler(request: Request, error: RequestValidationError) -> JSONResponse:
    errors = error.errors()
    params = [(_field_name(e.get("loc", ())), _reason(e)) for e in errors]
    names = ", ".join(dict.fromkeys(name for name, _ in params))
    # A malformed URL parameter is a bad request (OGC API – Features requires 400 there); a body
    # that parses but does not validate is unprocessable content.
    in_body = any(e.get("loc", ("",))[0] == "body" for e in errors)
    return problem_response(request, 422 if in_body else 400, f"invalid request field(s): {names}",
                            invalid_params=params)


async def _problem_handler(request: Request, error: Problem) -> JSONResponse:
    return problem_response(
        request, error.status, error.detail, invalid_params=error.invalid_params, headers=error.headers,
        title=error.title,
    )


async def _http_handler(request: Request, error: StarletteHTTPException) -> JSONResponse:
    detail = error.detail if isinstance(error.detail, str) else str(error.detail)
    return problem_response(request, error.status_code, detail, headers=getattr(error, "headers", None))


async def _input_handler(request: Request, error: InputError) -> JSONResponse:
    # Science code names the offending input in its message; surface it as the request's fault.
    return problem_response(request, 422, str(error))


async def _product_handler(request: Request, error: ProductError) -> JSONResponse:
    log.warning("product error on %s: %s", request.url.path, error)
    return problem_response(request, 404, f"product unavailable: {error.problem}")


async def _unexpected_handler(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(request, 500, "internal error; the server log has the details")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with a problem document."""
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(Problem, _problem_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(InputError, _input_handler)
    app.add_exception_handler(ProductError, _product_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
