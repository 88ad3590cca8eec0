"""`tams up`: the embedded stack (broker, agent worker, API) as child processes, stopped together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tams.broker import BrokerUnavailable, split_host_port, start_broker, wait_for_port
from tams.settings import Settings


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _say(message: str) -> None:
    print(f"[tams] {message}", flush=True)


def _spawn(name: str, args: list[str], log_path: Path) -> Child:
    log = open(log_path, "ab")
    process = subprocess.Popen([sys.executable, "-m", "tams.cli", *args], stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    return Child(name, process)


def _wait_http(url: str, child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with code {child.process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout:.0f}s")


def stop_all(children: list[Child], timeout: float = 15.0) -> None:
    """SIGTERM every child's process group, then SIGKILL whatever is left after `timeout`."""
    for child in reversed(children):
        if child.process.poll() is None:
            _say(f"stopping {child.name}")
            try:
                os.killpg(child.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for child in reversed(children):
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _say(f"{child.name} did not stop in time; killing it")
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()


def run_up(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    children: list[Child] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:  # a second Ctrl-C (or a signal forwarded twice) must not interrupt the shutdown
            return
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        host, port = split_host_port(settings.kafka_bootstrap)
        try:
            wait_for_port(host, port, timeout=0.2)
            _say(f"using the Kafka broker already listening on {settings.kafka_bootstrap}")
        except BrokerUnavailable:
            _say(f"starting the embedded broker (Tansu) on {settings.kafka_bootstrap}")
            children.append(Child("broker", start_broker(settings.kafka_bootstrap, logs / "broker.log")))
        _say("starting the agent worker (Faust)")
        worker = _spawn("worker", ["worker"], logs / "worker.log")
        children.append(worker)
        _say(f"starting the API on {settings.api_base_url}")
        api = _spawn("api", ["api"], logs / "api.log")
        children.append(api)
        _wait_http(f"{settings.api_base_url}/health", api, timeout=60)
        _say(f"ready: TAMS API at {settings.api_base_url}  (metadata {settings.metadata_location}, "
             f"media {settings.media_location}, logs in {logs})")
        _say("try `tams demo` in another shell; Ctrl-C stops everything")
        while True:
            for child in children:
                if child.process.poll() is not None:
                    _say(f"{child.name} exited with code {child.process.returncode}; see {logs}")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        _say(f"failed: {exc}")
        return 1
    finally:
        stop_all(children)
        _say("stopped")
