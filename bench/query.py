"""Query benchmark: `GET /flows/{id}/segments` against every available metadata backend, side by side.

Each backend is filled directly through the store contract (the write path is measured by
bench/ingest.py) with one flow of `--segments` segments and `--flows` flows of `--per-flow` segments;
then the real stack (broker, worker, API in subprocesses) runs on it, with media on S3 so listings
carry SigV4-presigned URLs (signing needs no S3 server; none is contacted). Printed per backend:

- a timerange page (`limit=100`) at the start, middle and end of the big flow: API p50/p99 next
  to the raw store query (the same `list_segments` call in this process) and their ratio;
- the same on random flows among the many;
- `limit=1000` with presigned URLs against the same request with `accept_get_urls=` (no URLs): the
  URLs' cost per page and per segment (target: at most 20 ms per page, 20 µs per segment).

Backends: sqlite always; postgresql when PostgreSQL's binaries are installed (a server is started
on a temporary directory); vast when TAMS_VAST_ENDPOINT, _ACCESS_KEY, _SECRET_KEY and _BUCKET are set.

Usage: python bench/query.py [--segments 1000000] [--flows 1000] [--per-flow 1000] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.timing import NS_PER_SEC, TimeRange  # noqa: E402
from stores.backends import backend_id  # noqa: E402
from stores.metadata import (  # noqa: E402
    MetadataStore,
    ObjectRegistration,
    SegmentCommit,
    SegmentQuery,
    StoredSegment,
)
from tests.conftest import video_flow  # noqa: E402
from tests.stack import launch_stack  # noqa: E402

SEGMENT = 2 * NS_PER_SEC
S3_MEDIA = {"TAMS_MEDIA_URL": "s3://tams-bench/objects", "TAMS_S3_ENDPOINT": "http://127.0.0.1:9",
            "TAMS_S3_ADDRESSING_STYLE": "path", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


STORAGE_ID = backend_id(S3_MEDIA["TAMS_MEDIA_URL"], S3_MEDIA["TAMS_S3_ENDPOINT"])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Figures:
    rows: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, name: str, **values: float) -> None:
        self.rows[name] = values


def flow_commit(flow_id: str, first: int, last: int) -> SegmentCommit:
    """Segments [first, last) of a flow, each registering its own object, as the agent commits them."""
    segments, objects, now = [], [], time.time_ns()
    for i in range(first, last):
        tr = str(TimeRange.from_half_open(i * SEGMENT, (i + 1) * SEGMENT))
        object_id = f"{flow_id}-{i}"
        segments.append(StoredSegment(i * SEGMENT, (i + 1) * SEGMENT, object_id, None, tr,
                                      orjson.dumps({"object_id": object_id, "timerange": tr})))
        objects.append(ObjectRegistration(object_id, STORAGE_ID, flow_id, tr, None, None, "video/mp2t", None, now))
    return SegmentCommit(flow_id, segments, objects, now_ns=now)


async def fill_flow(store: MetadataStore, flow_id: str, count: int, batch: int = 20_000) -> None:
    await store.put_flow(video_flow(flow_id), time.time_ns())
    for first in range(0, count, batch):
        await store.commit_segments([flow_commit(flow_id, first, min(count, first + batch))])


async def fill_many(store: MetadataStore, flow_ids: list[str], per_flow: int) -> None:
    """Flows of `per_flow` segments, committed several flows per transaction as the agent does."""
    group = max(1, 20_000 // max(per_flow, 1))
    for first in range(0, len(flow_ids), group):
        chunk = flow_ids[first:first + group]
        for flow_id in chunk:
            await store.put_flow(video_flow(flow_id), time.time_ns())
        await store.commit_segments([flow_commit(flow_id, 0, per_flow) for flow_id in chunk])


async def timed(call: Callable[[], Awaitable[Any]], check: Callable[[Any], bool], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - t) * 1000)
        assert check(result)
    return times


async def measure(store: MetadataStore, http: httpx.AsyncClient, big: str, many: list[str], args: argparse.Namespace
                  ) -> Figures:
    figures = Figures()
    for name, fraction in (("big flow, start", 0.0), ("big flow, middle", 0.5), ("big flow, end", 0.999)):
        index = min(int(args.segments * fraction), args.segments - 200)
        window = TimeRange.from_half_open(index * SEGMENT + SEGMENT // 2, (index + 150) * SEGMENT)
        params = {"timerange": str(window), "limit": "100"}
        api = await timed(lambda: http.get(f"/flows/{big}/segments", params=params),
                          lambda r: r.status_code == 200 and len(r.json()) == 100, args.requests)
        raw = await timed(lambda: store.list_segments(SegmentQuery(big, *window.half_open(), limit=100)),
                          lambda p: len(p.segments) == 100, args.requests)
        figures.add(name, api_p50=statistics.median(api), api_p99=pct(api, .99), raw_p50=statistics.median(raw))

    rng = random.Random(1)
    picks = [(rng.choice(many), rng.randrange(0, max(1, args.per_flow - 100))) for _ in range(args.requests)]
    calls = iter(picks * 2)

    def many_api() -> Awaitable[httpx.Response]:
        flow_id, index = next(calls)
        window = TimeRange.from_half_open(index * SEGMENT, (index + 100) * SEGMENT)
        return http.get(f"/flows/{flow_id}/segments", params={"timerange": str(window), "limit": "100"})

    def many_raw() -> Awaitable[Any]:
        flow_id, index = next(calls)
        return store.list_segments(SegmentQuery(flow_id, index * SEGMENT, (index + 100) * SEGMENT, limit=100))

    api = await timed(many_api, lambda r: r.status_code == 200 and len(r.json()) == 100, args.requests)
    raw = await timed(many_raw, lambda p: len(p.segments) == 100, args.requests)
    figures.add(f"{len(many)} flows, random", api_p50=statistics.median(api), api_p99=pct(api, .99),
                raw_p50=statistics.median(raw))

    window = str(TimeRange.from_half_open(SEGMENT * (args.segments // 2), SEGMENT * (args.segments // 2 + 1000)))
    cases = (("limit=1000, presigned S3 URLs", {}), ("limit=1000, accept_get_urls=", {"accept_get_urls": ""}))
    for label, extra in cases:
        params = {"timerange": window, "limit": "1000", **extra}
        api = await timed(lambda: http.get(f"/flows/{big}/segments", params=params),
                          lambda r: r.status_code == 200 and len(r.json()) == 1000, max(20, args.requests // 4))
        figures.add(label, api_p50=statistics.median(api), api_p99=pct(api, .99))
    return figures


async def run_backend(name: str, metadata_url: str, open_store: Callable[[], Awaitable[MetadataStore]],
                      args: argparse.Namespace, env: dict[str, str] | None = None,
                      settle: Callable[[], Awaitable[None]] | None = None) -> Figures:
    store = await open_store()
    big, many = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(args.flows)]
    started = time.perf_counter()
    await fill_flow(store, big, args.segments)
    await fill_many(store, many, args.per_flow)
    if settle is not None:  # e.g. statistics after a bulk load, as a long-running database has them
        await settle()
    print(f"[{name}] filled {args.segments + args.flows * args.per_flow:,} segments "
          f"in {time.perf_counter() - started:.0f} s", flush=True)
    data = Path(tempfile.mkdtemp(prefix=f"tams-query-{name}-"))
    stack = launch_stack(data, env={"TAMS_METADATA_URL": metadata_url, **S3_MEDIA, **(env or {})})
    try:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            return await measure(store, http, big, many, args)
    finally:
        stack.stop()
        await store.close()


def report(results: dict[str, Figures]) -> None:
    names = list(results)
    print("\nms; ratio = API p50 / raw store p50 (same query, in process)")
    print(f"{'case':<32}" + "".join(f"{n + ' api p50/p99':>26}{'raw p50':>9}{'ratio':>7}" for n in names))
    for case in next(iter(results.values())).rows:
        line = f"{case:<32}"
        for n in names:
            row = results[n].rows[case]
            raw = row.get("raw_p50")
            line += f"{row['api_p50']:>16.2f} / {row['api_p99']:>6.2f}"
            line += f"{raw:>9.3f}{row['api_p50'] / raw:>7.1f}" if raw else f"{'':>9}{'':>7}"
        print(line)
    for n in names:
        rows = results[n].rows
        signed = rows["limit=1000, presigned S3 URLs"]["api_p50"]
        bare = rows["limit=1000, accept_get_urls="]["api_p50"]
        print(f"[{n}] presigned URLs add {signed - bare:.2f} ms per 1,000-segment page "
              f"({(signed - bare):.1f} µs per segment; target <= 20 ms / 20 µs): ratio {signed / bare:.2f}")


async def main(args: argparse.Namespace) -> None:
    results: dict[str, Figures] = {}
    tmp = Path(tempfile.mkdtemp(prefix="tams-query-"))

    async def sqlite_store() -> MetadataStore:
        from stores.sqlite import SqliteMetadataStore

        store = SqliteMetadataStore(tmp / "tams.db")
        await store.open()
        return store

    if "sqlite" in args.backends:
        results["sqlite"] = await run_backend("sqlite", f"sqlite:///{tmp / 'tams.db'}", sqlite_store, args)

    if "postgresql" in args.backends:
        from tests.pg_server import PostgresServer, PostgresUnavailable

        try:
            server = PostgresServer.start(tmp / "pg", durable=True)
        except PostgresUnavailable as exc:
            print(f"[postgresql] not available here: {exc}")
        else:
            try:
                dsn = await server.fresh_database()

                async def pg_store() -> MetadataStore:
                    from stores.postgres import PostgresMetadataStore

                    store = PostgresMetadataStore(dsn)
                    await store.open()
                    return store

                async def analyze() -> None:
                    import asyncpg

                    conn = await asyncpg.connect(dsn)
                    try:
                        await conn.execute("VACUUM ANALYZE")
                    finally:
                        await conn.close()

                results["postgresql"] = await run_backend("postgresql", dsn, pg_store, args, settle=analyze)
            finally:
                server.stop()

    if "vast" in args.backends:
        env = {k: os.environ.get(f"TAMS_VAST_{k}", "") for k in ("ENDPOINT", "ACCESS_KEY", "SECRET_KEY", "BUCKET")}
        if not all(env.values()):
            print("[vast] not run: no VAST cluster configured (TAMS_VAST_ENDPOINT, _ACCESS_KEY, _SECRET_KEY, _BUCKET)")
        else:
            from urllib.parse import urlparse

            from stores.factory import vast_store_from_url
            from tams.settings import Settings

            endpoint = urlparse(env["ENDPOINT"])
            url = (f"vast://{endpoint.netloc}/{env['BUCKET']}/tams_bench_{uuid.uuid4().hex[:8]}"
                   f"?tls={'true' if endpoint.scheme == 'https' else 'false'}")
            settings = Settings(vast_access_key=env["ACCESS_KEY"], vast_secret_key=env["SECRET_KEY"])

            async def vast_store() -> MetadataStore:
                store = vast_store_from_url(url, settings)
                await store.open()
                return store

            results["vast"] = await run_backend("vast", url, vast_store, args, env={
                "TAMS_VAST_ACCESS_KEY": env["ACCESS_KEY"], "TAMS_VAST_SECRET_KEY": env["SECRET_KEY"]})
    report(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--flows", type=int, default=1_000)
    parser.add_argument("--per-flow", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgresql,vast")
    asyncio.run(main(parser.parse_args()))
