"""Ingest benchmark: raw broker produce rate vs the end-to-end pipeline, and latency at a fixed load.

Starts its own embedded stack (Tansu, one agent worker, the API) in a temporary directory and prints:
- raw produce: the same framed events sent with aiokafka to a scratch topic (the baseline);
- end to end: events published until every segment is visible through `GET /flows/{id}/segments`;
- the ratio of the two, and a second baseline: the same events consumed with aiokafka, nothing applied;
- p50/p99 latency at a fixed offered load, from publish to the `flows/segments_added` event the agent
  emits after its commit (so the segment is visible through the API by then; spot-checked below).

Usage: python bench/ingest.py [--events 40000] [--rate 1000] [--seconds 10] [--media-bytes 1024]
                              [--by-reference] [--workers 1] [--metadata sqlite|postgresql] [--media local|s3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.ingest import IngestSegmentEvent, encode_ingest_event  # noqa: E402
from schemas.timing import NS_PER_SEC, TimeRange  # noqa: E402
from tests.conftest import video_flow  # noqa: E402
from tests.stack import launch_stack  # noqa: E402
from topics.producer import Publisher  # noqa: E402

SEGMENT = NS_PER_SEC // 25


def make_events(flows: list[str], per_flow: int, media_bytes: int, offset: int = 0,
                objects: dict[str, list[str]] | None = None) -> list[tuple[str, bytes]]:
    """Inline media of `media_bytes`, or (with `objects`) references to objects allocated beforehand."""
    media = b"\x47" * media_bytes
    out = []
    for i in range(offset, offset + per_flow):
        for flow_id in flows:
            timerange = TimeRange.from_half_open(i * SEGMENT, (i + 1) * SEGMENT)
            if objects is not None:
                event = IngestSegmentEvent(event_id=f"{flow_id}-{i}", flow_id=flow_id, timerange=timerange,
                                           object_id=objects[flow_id][i - offset])
                out.append((flow_id, encode_ingest_event(event)))
            else:
                event = IngestSegmentEvent(event_id=f"{flow_id}-{i}", flow_id=flow_id, timerange=timerange,
                                           media_size=media_bytes)
                out.append((flow_id, encode_ingest_event(event, media)))
    return out


async def allocate(http: httpx.AsyncClient, flow_id: str, count: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < count:
        r = await http.post(f"/flows/{flow_id}/storage", json={"limit": min(1000, count - len(ids))})
        ids += [o["object_id"] for o in r.json()["media_objects"]]
    return ids


async def produce(publisher: Publisher, topic: str, events: list[tuple[str, bytes]]) -> float:
    started = time.perf_counter()
    deliveries = [await publisher.send(topic, key.encode(), value) for key, value in events]
    await asyncio.gather(*deliveries)
    return time.perf_counter() - started


async def wait_visible(http: httpx.AsyncClient, flows: list[str], last_index: int, deadline_s: float = 300) -> None:
    last = str(TimeRange.from_half_open(last_index * SEGMENT, (last_index + 1) * SEGMENT))
    pending = set(flows)
    deadline = time.monotonic() + deadline_s
    while pending:
        for flow_id in list(pending):
            r = await http.get(f"/flows/{flow_id}/segments", params={"timerange": last, "accept_get_urls": ""})
            if r.json():
                pending.discard(flow_id)
        if time.monotonic() > deadline:
            raise TimeoutError(f"segments not visible after {deadline_s}s")
        await asyncio.sleep(0.05)  # coarse polling: the API shares the two cores with the worker


async def count_segments(http: httpx.AsyncClient, flow_id: str) -> int:
    total, url = 0, f"/flows/{flow_id}/segments?limit=1000&accept_get_urls="
    while url:
        r = await http.get(url)
        total += len(r.json())
        url = r.links.get("next", {}).get("url")
    return total


async def latency_run(stack_bootstrap: str, publisher: Publisher, flows: list[str], rate: float, seconds: float,
                      media_bytes: int, offset: int, objects: dict[str, list[str]] | None) -> list[float]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack_bootstrap, group_id=None, fetch_max_wait_ms=5)
    await consumer.start()
    await consumer.topics()
    consumer.assign([TopicPartition("tams.events", p) for p in consumer.partitions_for_topic("tams.events")])
    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    per_flow = int(rate * seconds / len(flows))
    events = make_events(flows, per_flow, media_bytes, offset, objects)
    wanted = {flow_id + "|" + orjson.loads(value.split(b"\n", 1)[0])["timerange"] for flow_id, value in events}

    async def listen() -> None:
        while len(seen) < len(events):
            for batch in (await consumer.getmany(timeout_ms=100)).values():
                now = time.perf_counter()
                for record in batch:
                    envelope = orjson.loads(record.value)
                    if envelope["event_type"] != "flows/segments_added":
                        continue
                    flow_id = envelope["event"]["flow_id"]
                    for seg in envelope["event"]["segments"]:
                        key = f"{flow_id}|{seg['timerange']}"
                        if key in wanted:
                            seen.setdefault(key, now)

    listener = asyncio.create_task(listen())
    interval = 1.0 / rate
    started = time.perf_counter()
    deliveries = []
    for n, (flow_id, value) in enumerate(events):
        target = started + n * interval
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        header = orjson.loads(value.split(b"\n", 1)[0])
        sent[f"{flow_id}|{header['timerange']}"] = time.perf_counter()
        deliveries.append(await publisher.send("tams.ingest.segments", flow_id.encode(), value))
    await asyncio.gather(*deliveries)
    await asyncio.wait_for(listener, 120)
    await consumer.stop()
    return [(seen[k] - sent[k]) * 1000 for k in sent]


async def raw_consume_rate(bootstrap: str, topic: str, count: int) -> float:
    """The consume baseline: plain aiokafka `getmany` over the raw baseline's events, nothing applied."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=20,
                                max_partition_fetch_bytes=16 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024)
    await consumer.start()
    try:
        await consumer.topics()
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()])
        await consumer.seek_to_beginning()
        seen, started = 0, 0.0
        while seen < count:
            for batch in (await consumer.getmany(timeout_ms=1000, max_records=2000)).values():
                if not seen:
                    started = time.perf_counter()
                seen += len(batch)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="tams-bench-"))
    with contextlib.ExitStack() as services:
        env = backend_env(args, data, services)
        await run(args, data, env)


async def raw_s3_put_rate(env: dict[str, str], size: int, count: int = 2000) -> float:
    """The S3 baseline: plain aioboto3 put_object calls, 32 in flight, against the same server."""
    import aioboto3

    from stores.s3 import client_config

    session = aioboto3.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                               aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    limit = asyncio.Semaphore(32)
    body = b"x" * size
    async with session.client("s3", endpoint_url=env["TAMS_S3_ENDPOINT"], region_name="us-east-1",
                              config=client_config(addressing_style="path", timeout_s=30)) as s3:
        async def put(i: int) -> None:
            async with limit:
                await s3.put_object(Bucket="tams-bench", Key=f"baseline/{i}", Body=body)

        started = time.perf_counter()
        await asyncio.gather(*(put(i) for i in range(count)))
        return count / (time.perf_counter() - started)


def backend_env(args: argparse.Namespace, data: Path, services: contextlib.ExitStack) -> dict[str, str]:
    """Settings for the chosen metadata and media backends, starting PostgreSQL or an S3 server as needed."""
    env: dict[str, str] = {}
    if args.metadata == "postgresql":
        from tests.pg_server import PostgresServer

        server = PostgresServer.start(data / "pg", durable=True)
        services.callback(server.stop)
        env["TAMS_METADATA_URL"] = server.dsn()
    if args.media == "s3":
        from tests.s3_server import CREDENTIALS, MotoServer

        moto = MotoServer.start(data / "moto.log")
        services.callback(moto.stop)
        moto.client().create_bucket(Bucket="tams-bench")
        env |= {**CREDENTIALS, "TAMS_MEDIA_URL": "s3://tams-bench/objects", "TAMS_S3_ENDPOINT": moto.endpoint,
                "TAMS_S3_ADDRESSING_STYLE": "path"}
    return env


async def run(args: argparse.Namespace, data: Path, env: dict[str, str]) -> None:
    stack = launch_stack(data, partitions=args.partitions, workers=args.workers, env=env)
    try:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as http:
            flows = [str(uuid.uuid4()) for _ in range(args.flows)]
            for flow_id in flows:
                r = await http.put(f"/flows/{flow_id}", json=video_flow(flow_id))  # waits for the worker to join
                assert r.status_code == 201, r.text
            publisher = Publisher(stack.bootstrap)
            await publisher.start()
            per_flow = args.events // len(flows)
            # Baseline: the same framed events to a scratch topic nobody consumes.
            objects = latency_objects = None
            latency_per_flow = int(args.rate * args.seconds / len(flows))
            if args.by_reference:
                objects = {f: await allocate(http, f, per_flow) for f in flows}
                latency_objects = {f: await allocate(http, f, latency_per_flow) for f in flows}
            raw_events = make_events(flows, per_flow, args.media_bytes, offset=10_000_000, objects=objects)
            raw_s = await produce(publisher, "bench.raw", raw_events[:1000])  # warm-up + topic creation
            raw_s = await produce(publisher, "bench.raw", raw_events)
            raw_rate = len(raw_events) / raw_s
            consume_rate = await raw_consume_rate(stack.bootstrap, "bench.raw", len(raw_events) + 1000)
            s3_rate = await raw_s3_put_rate(env, args.media_bytes) if args.media == "s3" else None
            # End to end.
            events = make_events(flows, per_flow, args.media_bytes, objects=objects)
            started = time.perf_counter()
            await produce(publisher, "tams.ingest.segments", events)
            published = time.perf_counter() - started
            await wait_visible(http, flows, per_flow - 1)
            e2e_s = time.perf_counter() - started
            counts = [await count_segments(http, f) for f in flows]
            assert sum(counts) == len(events), f"expected {len(events)} segments, found {sum(counts)}"
            e2e_rate = len(events) / e2e_s
            # Latency at a fixed offered load.
            latencies = await latency_run(stack.bootstrap, publisher, flows, args.rate, args.seconds,
                                          args.media_bytes, offset=per_flow, objects=latency_objects)
            sample = flows[0]
            visible = await count_segments(http, sample)
            await publisher.stop()
        kind = "by reference (objects uploaded beforehand)" if args.by_reference else (
            f"{args.media_bytes} B inline media each")
        workers = "one worker" if args.workers == 1 else f"{args.workers} workers"
        print(f"events: {len(events)} over {len(flows)} flows, {kind}, {args.partitions} partitions, {workers}, "
              f"metadata on {args.metadata}, media on {args.media}")
        print(f"raw broker produce:   {raw_rate:10,.0f} events/s")
        print(f"end-to-end pipeline:  {e2e_rate:10,.0f} segments/s  (published in {published:.2f}s, "
              f"all visible through the API after {e2e_s:.2f}s)")
        print(f"ratio e2e/raw:        {e2e_rate / raw_rate:10.3f}")
        print(f"raw broker consume:   {consume_rate:10,.0f} events/s  (aiokafka getmany, nothing applied)")
        if s3_rate is not None:
            print(f"raw S3 put (aioboto3, 32 at a time, same server): {s3_rate:10,.0f} objects/s "
                  f"(e2e reaches {e2e_rate / s3_rate:.2f} of it; by reference each first use costs one HEAD)")
        print(f"latency at {args.rate:,.0f}/s for {args.seconds:.0f}s ({len(latencies)} segments): "
              f"p50 {statistics.median(latencies):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
              f"max {max(latencies):.1f} ms  (flow {sample[:8]} has {visible} segments visible)")
    finally:
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--flows", type=int, default=8)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--media-bytes", type=int, default=1024)
    parser.add_argument("--by-reference", action="store_true", help="events name objects allocated beforehand")
    parser.add_argument("--workers", type=int, default=1, help="agent worker processes")
    parser.add_argument("--metadata", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--media", choices=("local", "s3"), default="local", help="s3: a moto server on loopback")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))
