"""``/api/v1/deployments``: pipelines post deployment events; anyone may list them.

Writing needs ``Authorization: Bearer <api_token>`` (compared in constant time). With no
token configured, writes are refused (403) rather than open: an unauthenticated write
endpoint on a cluster-internal service is a way to forge history. The token is never logged
and never echoed. Errors keep the app's ``{"error", "hint"}`` shape (docs/api.md).
"""

from __future__ import annotations

import hmac
import json
import math
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from imagetrail.errors import InputError, PayloadTooLarge, UnsupportedMediaType
from imagetrail.service.deployments import (
    deployments_with_matches,
    match_json,
    parse_deployment,
    record_deployment,
)
from imagetrail.web.api import QueryDep, StateDep

router = APIRouter(prefix="/api/v1", tags=["deployments"])

MAX_BODY = 64 * 1024
"""Largest accepted request body in bytes; an event is a few hundred."""
MAX_DEPTH = 8
"""Deepest nesting of arrays and objects accepted; an event is one flat object."""
MAX_NUMBER = 64
"""Longest JSON number accepted, in characters; unix seconds take a dozen or so."""

# Strings (escapes included) or brackets: the brackets outside strings give the nesting. A
# string always matches from its quote on (possessive, closing quote optional), so a body of
# unterminated strings costs one pass, not one per quote.
_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*+"?|[\[\]{}]', re.DOTALL)


def _refuse(status: int, message: str, hint: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="imagetrail"'} if status == 401 else None
    return JSONResponse({"error": message, "hint": hint}, status_code=status, headers=headers)


def _authorization_problem(request: Request, token: str | None) -> JSONResponse | None:
    if not token:
        return _refuse(
            403,
            "this server accepts no deployment events: no API token is configured",
            "set IMAGETRAIL_API_TOKEN (the api_token setting) on the server",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Encoded both ways the same: compare_digest needs bytes for non-ASCII input.
    expected = token.encode("utf-8", "surrogateescape")
    supplied = given.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() != "bearer" or not hmac.compare_digest(supplied, expected):
        return _refuse(
            401,
            "missing or wrong API token",
            "send Authorization: Bearer <the server's api_token>",
        )
    return None


async def _body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise PayloadTooLarge(f"the request body is larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:  # a chunked body has no Content-Length to check up front
            raise PayloadTooLarge(f"the request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InputError(f"the JSON object has the field {key!r} twice")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise InputError(f"{name} is not a JSON number")


def _number_text(text: str) -> str:
    if len(text) > MAX_NUMBER:
        raise InputError(
            f"the body holds a number of {len(text)} characters (at most {MAX_NUMBER})",
            hint="send times as unix seconds or RFC 3339 strings",
        )
    return text


def _int(text: str) -> int:
    return int(_number_text(text))


def _float(text: str) -> float:
    value = float(_number_text(text))
    if not math.isfinite(value):  # 1e999 is a valid JSON number and an infinite float
        raise InputError(f"the number {text} is out of range")
    return value


def _check_depth(raw: bytes) -> None:
    """Refuse deep nesting before the parser recurses into it (RecursionError otherwise)."""
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise InputError(
                    f"the body nests arrays or objects deeper than {MAX_DEPTH} levels",
                    hint="an event is one flat JSON object",
                )
        elif token in (b"]", b"}"):
            depth -= 1


def decode_event(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The request body as a JSON object; :class:`InputError` (400/415) says what is wrong."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(
            f"the body must be application/json, not {media or 'unspecified'!r}",
            hint="send Content-Type: application/json",
        )
    _check_depth(raw)
    try:
        text = raw.decode("utf-8")
        body = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_int=_int,
            parse_float=_float,
        )
    except UnicodeDecodeError:
        raise InputError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object", hint="see /docs")
    return body


@router.post(
    "/deployments",
    summary="Record a deployment event (needs Authorization: Bearer <api_token>)",
    status_code=201,
    responses={
        200: {"description": "The same event was already recorded (a retry)"},
        401: {"description": "Missing or wrong token"},
        403: {"description": "No token configured on the server"},
        409: {"description": "Another event has this id"},
        413: {"description": "Body larger than 64 KiB"},
        415: {"description": "Not application/json"},
        422: {"description": "A field is missing or malformed"},
    },
)
async def post_deployment(request: Request, app_state: StateDep) -> JSONResponse:
    refused = _authorization_problem(request, app_state.settings.api_token)
    if refused is not None:
        return refused
    body = decode_event(await _body(request), request.headers.get("content-type"))
    event = parse_deployment(body, now=time.time())
    # The ledger write blocks: off the event loop, as FastAPI runs plain `def` endpoints.
    match, created = await run_in_threadpool(
        record_deployment,
        app_state.ledger,
        event,
        window=float(app_state.settings.deploy_match_window),
    )
    return JSONResponse(match_json(match), status_code=201 if created else 200)


@router.get("/deployments", summary="Deployment events with their matched change and lead time")
def list_deployments(app_state: StateDep, q: QueryDep) -> list[dict[str, Any]]:
    return [match_json(m) for m in deployments_with_matches(app_state.context, q)]


__all__ = ["MAX_BODY", "MAX_DEPTH", "MAX_NUMBER", "decode_event", "router"]
