"""JSON responses serialised with orjson (FastAPI's own ORJSONResponse is deprecated since 0.16x)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class Json(JSONResponse):
    """A JSON response; orjson handles the dataclasses, UUIDs and datetimes the routes return."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
