"""What every route needs, built once at start-up and kept on `app.state.ctx`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from api.commands import CommandClient
from stores.backends import StorageBackends
from stores.metadata import MetadataStore
from tams.settings import Settings


@dataclass
class Context:
    settings: Settings
    store: MetadataStore
    commands: CommandClient
    backends: StorageBackends


def ctx(request: Request) -> Context:
    return request.app.state.ctx
