"""Applying field patches to flow and source documents: the rule behind every sub-resource write."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from agents.rules import Rejected
from schemas.commands import FieldPatch
from schemas.deadletter import RejectReason


def patch_document(doc: dict[str, Any], patches: Sequence[FieldPatch]) -> dict[str, Any]:
    """A copy of `doc` with each patch applied in order; removing a missing field is a NotFound-style rejection."""
    patched = copy.deepcopy(doc)
    for patch in patches:
        parent: dict[str, Any] = patched
        *outer, name = patch.path
        for key in outer:
            parent = parent.setdefault(key, {})
        if patch.remove:
            if name not in parent:
                raise Rejected(RejectReason.FIELD_NOT_SET, f"{'/'.join(patch.path)} is not set")
            del parent[name]
        else:
            parent[name] = patch.value
    return patched


def only_read_only_changes(patches: Sequence[FieldPatch]) -> bool:
    """A read-only flow accepts changes to `read_only` itself and nothing else."""
    return all(p.path == ["read_only"] for p in patches)


def with_metadata_version(doc: dict[str, Any], supplied: str | None = None) -> dict[str, Any]:
    """`doc` with its `metadata_version`: the client's value when given (replication keeps it),
    otherwise a hash of the metadata, so equal metadata always has an equal version."""
    body = {k: v for k, v in doc.items() if k != "metadata_version"}
    version = supplied or hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    return {**body, "metadata_version": version}


def attributed(doc: dict[str, Any], principal: str | None, current: dict[str, Any] | None) -> dict[str, Any]:
    """A flow or source document with `created_by`/`updated_by` from the principal that changed it.

    With a known principal both are the server's: `created_by` is kept from the stored document
    (set on creation), `updated_by` is the principal. Without one, the client's values stand."""
    if principal is None:
        return doc
    created_by = principal if current is None else current.get("created_by")
    return {**{k: v for k, v in doc.items() if k != "created_by"}, **({"created_by": created_by} if created_by else {}),
            "updated_by": principal}
