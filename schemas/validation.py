"""One way to say what failed validation, for dead letters, command replies and 400s alike."""

from __future__ import annotations

from pydantic import ValidationError


def summarise_errors(exc: ValidationError, *, what: str = "document", most: int | None = None) -> str:
    """`field.path: message; ...` for each error (the first `most` of them), `what` where no field applies."""
    errors = exc.errors(include_url=False)[:most]
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in errors)
