"""What every route needs, built once at start-up and kept on `app.state.ctx`."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from api.commands import CommandClient
from stores.media import MediaStore
from stores.metadata import MetadataStore
from stores.signing import UrlSigner
from tams.settings import Settings


@dataclass(frozen=True, slots=True)
class StorageBackendConfig:
    id: str
    label: str
    store_type: str = "http_object_store"
    provider: str = "tams-pipeline"
    store_product: str = "local directory"
    tags: dict[str, str | list[str]] = field(default_factory=dict)  # read-only through the API


@dataclass
class Context:
    settings: Settings
    store: MetadataStore
    media: MediaStore
    signer: UrlSigner
    commands: CommandClient
    backend: StorageBackendConfig


def ctx(request: Request) -> Context:
    return request.app.state.ctx
