"""Query benchmark: GET /flows/{id}/segments?timerange=…&limit=100 on a flow of 1,000,000 segments.

Fills the embedded SQLite store directly (the write path is measured by bench/ingest.py), starts the
API in a subprocess and prints p50/p99 of the HTTP request next to the raw store query (the same
`list_segments` call, in-process) at the start, middle and end of the flow, with their ratio.

Usage: python bench/query.py [--segments 1000000] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.timing import NS_PER_SEC, TimeRange  # noqa: E402
from stores.metadata import SegmentCommit, SegmentQuery, StoredSegment  # noqa: E402
from stores.sqlite import SqliteMetadataStore  # noqa: E402
from tests.stack import launch_stack  # noqa: E402

SEGMENT = 2 * NS_PER_SEC


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fill(db: Path, flow_id: str, count: int) -> None:
    store = SqliteMetadataStore(db)
    await store.open()
    await store.put_flow({"id": flow_id, "source_id": str(uuid.uuid4()), "format": "urn:x-nmos:format:video",
                          "codec": "video/h264", "container": "video/mp2t",
                          "essence_parameters": {"frame_width": 1920, "frame_height": 1080,
                                                 "frame_rate": {"numerator": 25}}}, time.time_ns())
    for start in range(0, count, 20_000):
        segments = []
        for i in range(start, min(count, start + 20_000)):
            tr = TimeRange.from_half_open(i * SEGMENT, (i + 1) * SEGMENT)
            object_id = f"{flow_id}-{i}"
            segments.append(StoredSegment(i * SEGMENT, (i + 1) * SEGMENT, object_id, None, str(tr),
                                       orjson.dumps({"object_id": object_id, "timerange": str(tr)})))
        await store.commit_segments([SegmentCommit(flow_id, segments, now_ns=time.time_ns())])
    await store.close()


async def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="tams-query-"))
    flow_id = str(uuid.uuid4())
    started = time.perf_counter()
    await fill(data / "tams.db", flow_id, args.segments)
    print(f"filled {args.segments:,} segments in {time.perf_counter() - started:.1f}s")
    stack = launch_stack(data)
    raw_store = SqliteMetadataStore(data / "tams.db")
    try:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
            print(f"{'position':>8} {'api p50':>9} {'api p99':>9} {'raw p50':>9} {'raw p99':>9} {'ratio p50':>9}")
            for name, fraction in (("start", 0.0), ("middle", 0.5), ("end", 0.999)):
                index = int(args.segments * fraction)
                query = TimeRange.from_half_open(index * SEGMENT + SEGMENT // 2, (index + 150) * SEGMENT)
                params = {"timerange": str(query), "limit": "100"}
                api, raw = [], []
                for _ in range(args.requests):
                    t = time.perf_counter()
                    r = await http.get(f"/flows/{flow_id}/segments", params=params)
                    api.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200 and len(r.json()) == 100
                    t = time.perf_counter()
                    page = await raw_store.list_segments(SegmentQuery(flow_id, *query.half_open(), limit=100))
                    raw.append((time.perf_counter() - t) * 1000)
                    assert len(page.segments) == 100
                print(f"{name:>8} {statistics.median(api):8.2f}ms {pct(api, .99):8.2f}ms "
                      f"{statistics.median(raw):8.3f}ms {pct(raw, .99):8.3f}ms "
                      f"{statistics.median(api) / statistics.median(raw):9.1f}")
    finally:
        await raw_store.close()
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
