"""A Faust agent that does nothing: the ceiling Faust itself puts on the pipeline (run by bench/ingest.py).

Usage: python bench/faust_noop.py BOOTSTRAP TOPIC COUNT  — prints `rate <events/s>` once COUNT events
were consumed (timed from the first one, so the group join is not counted), then exits.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faust  # noqa: E402

from agents import transport  # noqa: E402


def main(bootstrap: str, topic_name: str, count: int) -> None:
    scheme = transport.register(20)
    app = faust.App(f"bench-noop-{uuid.uuid4().hex[:8]}", broker=f"{scheme}://{bootstrap}", web_enabled=False,
                    consumer_auto_offset_reset="earliest", topic_allow_declare=False,
                    broker_max_poll_records=2000, stream_buffer_maxsize=4096)
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
    state = {"seen": 0, "started": 0.0}

    @app.agent(topic)
    async def noop(stream: Any) -> None:
        async for events in stream.take_events(2000, within=0.005):
            if not state["seen"]:
                state["started"] = time.perf_counter()
            state["seen"] += len(events)
            if state["seen"] >= count:
                print(f"rate {state['seen'] / (time.perf_counter() - state['started']):.0f}", flush=True)
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
