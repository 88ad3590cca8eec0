"""The README's producer example works as written against the real pipeline."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import video_flow
from tests.kafka_tools import wait_for_segments
from tests.stack import Stack

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_producer() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (block,) = [b for b in blocks if "async def publish" in b]
    return block


async def test_readme_producer_example_publishes_a_segment_the_api_serves(
        stack: Stack, http: httpx.AsyncClient) -> None:
    namespace: dict[str, object] = {}
    exec(readme_producer(), namespace)
    flow = video_flow()
    assert (await http.put(f"/flows/{flow['id']}", json=flow)).status_code == 201
    await namespace["publish"](stack.bootstrap, flow["id"], b"readme media")  # type: ignore[operator]
    found = await wait_for_segments(http, [flow["id"]], 1, timeout=60)
    (segment,) = found[flow["id"]]
    assert segment["timerange"] == "[0:0_2:0)"
    listed = (await http.get(f"/flows/{flow['id']}/segments")).json()
    assert (await http.get(listed[0]["get_urls"][0]["url"])).content == b"readme media"
