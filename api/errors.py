"""Every 4xx/5xx the API gives carries `{type, summary, time}` saying what was wrong."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.responses import Json
from schemas.deadletter import RejectReason
from schemas.events import rfc3339_now


class ApiError(Exception):
    """Raised by routes; rendered as the TAMS error body with `status`."""

    def __init__(self, status: int, type_: str, summary: str) -> None:
        super().__init__(summary)
        self.status = status
        self.type = type_
        self.summary = summary


def bad_request(summary: str, type_: str = "BadRequest") -> ApiError:
    return ApiError(400, type_, summary)


def not_found(summary: str) -> ApiError:
    return ApiError(404, "NotFound", summary)


def forbidden(summary: str) -> ApiError:
    return ApiError(403, "Forbidden", summary)


REASON_STATUS = {
    RejectReason.UNKNOWN_FLOW: 404,
    RejectReason.UNKNOWN_SOURCE: 404,
    RejectReason.FLOW_READ_ONLY: 403,
    RejectReason.FIELD_NOT_SET: 404,
    RejectReason.INTERNAL_ERROR: 500,
}


def from_reason(reason: RejectReason | None, detail: str | None) -> ApiError:
    """Map an agent's rejection to the HTTP status a TAMS client expects."""
    reason = reason or RejectReason.INVALID_COMMAND
    return ApiError(REASON_STATUS.get(reason, 400), reason.value, detail or reason.value)


def error_response(status: int, type_: str, summary: str) -> Json:
    return Json({"type": type_, "summary": summary, "time": rfc3339_now()}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Json:
        return error_response(exc.status, exc.type, exc.summary)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Json:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"{where}: {err.get('msg')}")
        return error_response(400, "ValidationError", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Json:
        return error_response(exc.status_code, "HTTPError", str(exc.detail))
