"""The `store` fixture, one fresh empty store per test on every backend, and the helpers the contract tests share.

Backends: `sqlite` (a temp file), `postgres` (one real server for the session, a fresh database per test),
`vast-standin` (the real `VastMetadataStore` on the in-memory vastdb stand-in, a fresh schema per test) and
`vast` (a real cluster, only when TAMS_VAST_* is set; a fresh schema per test, all dropped at the end).
A backend whose module is missing fails loudly: it is never skipped.
"""

from __future__ import annotations

import functools
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agents.rules import SegmentRequest, segment_doc
from schemas.timing import NS_PER_SEC, TimeRange, parse_timestamp
from stores.metadata import (
    FlowRecord,
    MetadataStore,
    ObjectRegistration,
    SegmentCommit,
    SegmentQuery,
    StoredSegment,
)

S = NS_PER_SEC
STORAGE = "5e1f3c1a-0000-4000-8000-00000000aaaa"
VIDEO = "urn:x-nmos:format:video"
AUDIO = "urn:x-nmos:format:audio"
DATA = "urn:x-nmos:format:data"
MULTI = "urn:x-nmos:format:multi"

# -------------------------------------------------------------------------------------------- backends

VAST_ENV = ("TAMS_VAST_ENDPOINT", "TAMS_VAST_ACCESS_KEY", "TAMS_VAST_SECRET_KEY", "TAMS_VAST_BUCKET")
_MISSING_VAST_ENV = [name for name in VAST_ENV if not os.environ.get(name)]
REAL_VAST_CONFIGURED = not _MISSING_VAST_ENV
REAL_VAST_SKIP_REASON = (
    "no VAST cluster configured: set TAMS_VAST_ENDPOINT, TAMS_VAST_ACCESS_KEY, TAMS_VAST_SECRET_KEY and "
    "TAMS_VAST_BUCKET to run the contract suite against one"
    + ("" if len(_MISSING_VAST_ENV) == len(VAST_ENV) else f" (missing: {', '.join(_MISSING_VAST_ENV)})")
)
BACKENDS = ("sqlite", "postgres", "vast-standin") + (("vast",) if REAL_VAST_CONFIGURED else ())


class Backends:
    """Shared, lazily started backend resources for the session: a PostgreSQL server, the vastdb stand-in,
    the real-VAST connection; and the per-test stores made from them."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.run_id = uuid.uuid4().hex[:10]
        self._schema_numbers = itertools.count()
        self._postgres: Any = None
        self._standin: Any = None
        self.real_vast_schemas: list[str] = []

    def postgres(self) -> Any:
        if self._postgres is None:
            from tests.pg_server import PostgresServer

            self._postgres = PostgresServer.start(self.base_dir)
        return self._postgres

    def standin(self) -> Any:
        if self._standin is None:
            from tests.vast_standin import VastStandin

            self._standin = VastStandin(buckets=("tams",))
        return self._standin

    @staticmethod
    def real_vast_session_factory() -> Any:
        import vastdb

        return functools.partial(vastdb.connect, endpoint=os.environ["TAMS_VAST_ENDPOINT"],
                                 access=os.environ["TAMS_VAST_ACCESS_KEY"],
                                 secret=os.environ["TAMS_VAST_SECRET_KEY"], timeout=30)

    async def new_store(self, backend: str, tmp_path: Path) -> MetadataStore:
        if backend == "sqlite":
            from stores.sqlite import SqliteMetadataStore

            return SqliteMetadataStore(tmp_path / "tams.db")
        if backend == "postgres":
            from stores.postgres import PostgresMetadataStore

            return PostgresMetadataStore(await self.postgres().fresh_database())
        if backend == "vast-standin":
            from stores.vast import VastMetadataStore

            return VastMetadataStore(session_factory=self.standin().connect, bucket="tams",
                                     schema=f"t{next(self._schema_numbers)}")
        if backend == "vast":
            from stores.vast import VastMetadataStore

            schema = f"tams_contract_{self.run_id}_{next(self._schema_numbers)}"
            self.real_vast_schemas.append(schema)
            return VastMetadataStore(session_factory=self.real_vast_session_factory(),
                                     bucket=os.environ["TAMS_VAST_BUCKET"], schema=schema)
        raise AssertionError(f"unknown backend {backend}")

    def close(self) -> None:
        try:
            if self.real_vast_schemas:
                drop_vast_schemas(self.real_vast_session_factory(), os.environ["TAMS_VAST_BUCKET"],
                                  self.real_vast_schemas)
        finally:
            if self._postgres is not None:
                self._postgres.stop()


def drop_vast_schemas(session_factory: Any, bucket: str, names: Iterable[str]) -> None:
    """Drop this run's schemas (tables and nested schemas first: VAST only drops empty schemas)."""

    def drop(schema: Any) -> None:
        for child in schema.schemas():
            drop(child)
        for table in schema.tables():
            table.drop()
        schema.drop()

    session = session_factory()
    with session.transaction() as tx:
        b = tx.bucket(bucket)
        for name in names:
            schema = b.schema(name, fail_if_missing=False)
            if schema is not None:
                drop(schema)


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    shared = Backends(tmp_path_factory.mktemp("contract-backends"))
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path, backends: Backends) -> AsyncIterator[MetadataStore]:
    """A fresh, empty, opened store."""
    instance = await backends.new_store(request.param, tmp_path)
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


_REAL_VAST_TESTS: set[str] = set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("store") == "vast":
            _REAL_VAST_TESTS.add(item.nodeid)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not REAL_VAST_CONFIGURED:
        terminalreporter.write_line(f"real-VAST contract run: skipped ({REAL_VAST_SKIP_REASON})")
        return
    outcomes = {category: len({r.nodeid for r in terminalreporter.stats.get(category, [])
                               if getattr(r, "nodeid", None) in _REAL_VAST_TESTS})
                for category in ("passed", "failed", "error", "skipped")}
    ran = ", ".join(f"{n} {category}" for category, n in outcomes.items() if n) or "no test selected"
    terminalreporter.write_line(f"real-VAST contract run: ran against {os.environ['TAMS_VAST_ENDPOINT']} "
                                f"bucket {os.environ['TAMS_VAST_BUCKET']}: {ran}")


# -------------------------------------------------------------------------------------------- helpers


def new_id() -> str:
    return str(uuid.uuid4())


def ordered_id(n: int) -> str:
    """Ids whose string order is `n`'s order, for tests about id order and tie-breaks."""
    return f"00000000-0000-4000-8000-{n:012d}"


def ns(timestamp: str) -> int:
    return parse_timestamp(timestamp)


def span(timerange: str) -> tuple[int, int]:
    """The half-open int64 form of a TAMS timerange, as the API hands it to stores."""
    return TimeRange.parse(timerange).half_open()


def flow_doc(flow_id: str | None = None, source_id: str | None = None, *, format: str = VIDEO,
             **extra: Any) -> dict[str, Any]:
    """A flow document as the agent stores it (TAMS wire form without server-computed fields)."""
    doc: dict[str, Any] = {"id": flow_id or new_id(), "source_id": source_id or new_id(), "format": format}
    if format == VIDEO:
        doc |= {"codec": "video/h264", "container": "video/mp2t",
                "essence_parameters": {"frame_width": 1920, "frame_height": 1080,
                                       "frame_rate": {"numerator": 25, "denominator": 1}}}
    elif format == AUDIO:
        doc |= {"codec": "audio/aac", "container": "video/mp2t",
                "essence_parameters": {"sample_rate": 48000, "channels": 2}}
    elif format == DATA:
        doc |= {"codec": "application/json", "container": "application/json"}
    return doc | extra


async def add_flow(store: MetadataStore, flow_id: str | None = None, source_id: str | None = None, *,
                   now_ns: int = 1_000, **extra: Any) -> str:
    doc = flow_doc(flow_id, source_id, **extra)
    await store.put_flow(doc, now_ns)
    return doc["id"]


def segment(start_ns: int, end_ns: int, object_id: str | None = None, *, init_object_id: str | None = None,
            ts_offset: int | None = None, key_frame_count: int | None = None,
            object_timerange: str | None = None) -> StoredSegment:
    """A stored segment built the way the write rules build it (`agents.rules.segment_doc`)."""
    request = SegmentRequest(ref=0, object_id=object_id or new_id(), timerange=TimeRange.from_half_open(start_ns, end_ns),
                             ts_offset=ts_offset, key_frame_count=key_frame_count, init_object_id=init_object_id)
    own = object_timerange or str(request.timerange.shift(-(ts_offset or 0)))
    return StoredSegment(start_ns, end_ns, request.object_id, init_object_id, own, segment_doc(request))


def seconds(start_s: float, end_s: float, object_id: str | None = None, **fields: Any) -> StoredSegment:
    """A segment from whole or fractional seconds (exact for the values the tests use)."""
    return segment(round(start_s * S), round(end_s * S), object_id, **fields)


def registration(seg: StoredSegment, flow_id: str, *, now_ns: int = 1_000, size: int | None = None,
                 checksum: str | None = None, storage_id: str = STORAGE) -> ObjectRegistration:
    """The first use of the segment's object, as `agents.rules.plan_segments` records it."""
    return ObjectRegistration(object_id=seg.object_id, storage_id=storage_id, flow_id=flow_id,
                              timerange=seg.object_timerange or str(TimeRange.from_half_open(seg.start_ns, seg.end_ns)),
                              key_frame_count=None, init_object_id=seg.init_object_id, content_type="video/mp2t",
                              size=size, checksum=checksum, created_ns=now_ns)


def commit(flow_id: str, segments: Sequence[StoredSegment], *, register: bool | Iterable[str] = True,
           event_ids: Sequence[str] = (), now_ns: int = 2_000) -> SegmentCommit:
    """One flow's commit. `register`: True registers every object the segments use (first use of each),
    False none, or the ids to register."""
    wanted = {s.object_id for s in segments} if register is True else set() if register is False else set(register)
    objects, seen = [], set()
    for s in segments:
        if s.object_id in wanted and s.object_id not in seen:
            seen.add(s.object_id)
            objects.append(registration(s, flow_id, now_ns=now_ns))
    return SegmentCommit(flow_id=flow_id, segments=list(segments), objects=objects, event_ids=list(event_ids),
                         now_ns=now_ns)


async def add_segments(store: MetadataStore, flow_id: str, segments: Sequence[StoredSegment], *,
                       register: bool | Iterable[str] = True, event_ids: Sequence[str] = (),
                       now_ns: int = 2_000) -> list[StoredSegment]:
    await store.commit_segments([commit(flow_id, segments, register=register, event_ids=event_ids, now_ns=now_ns)])
    return list(segments)


async def all_segments(store: MetadataStore, flow_id: str, timerange: str = "_", *, reverse: bool = False,
                       object_id: str | None = None) -> list[StoredSegment]:
    """Every segment overlapping the timerange, in one page."""
    start, end = span(timerange)
    page = await store.list_segments(SegmentQuery(flow_id, start, end, object_id=object_id, reverse=reverse,
                                                  limit=100_000))
    assert not page.more
    return page.segments


def spans(segments: Iterable[StoredSegment]) -> list[tuple[int, int]]:
    return [(s.start_ns, s.end_ns) for s in segments]


def flow_ids(records: Iterable[FlowRecord]) -> list[str]:
    return [r.id for r in records]
