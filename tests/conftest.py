from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.stack import Stack, launch_stack

SPEC = Path(__file__).resolve().parents[2] / "shared" / "tams-spec"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One broker, one agent worker and one API for the whole session: group joins are slow."""
    s = launch_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
async def http(stack: Stack) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120.0) as client:
        yield client


def video_flow(flow_id: str | None = None, source_id: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "id": flow_id or str(uuid.uuid4()), "source_id": source_id or str(uuid.uuid4()),
        "format": "urn:x-nmos:format:video", "codec": "video/h264", "container": "video/mp2t",
        "essence_parameters": {"frame_width": 1920, "frame_height": 1080, "frame_rate": {"numerator": 25}},
        **extra,
    }
