"""Running the real pipeline for tests: Tansu broker, agent worker and API as separate processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tams.broker import start_broker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    """The embedded stack, with handles to kill and restart the worker."""

    data_dir: Path
    bootstrap: str
    api_port: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.data_dir / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "tams.cli", *args], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = proc
        return proc

    def start_worker(self) -> None:
        self._spawn("worker", "worker", "--loglevel", "info")

    def kill_worker(self) -> None:
        proc = self.processes.pop("worker")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def start_api(self) -> None:
        proc = self._spawn("api", "api")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"api exited: {(self.data_dir / 'api.log').read_text()[-3000:]}"
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("the API did not become healthy")

    def stop(self) -> None:
        for name, proc in list(self.processes.items()):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.processes.clear()

    def log(self, name: str) -> str:
        return (self.data_dir / f"{name}.log").read_text(errors="replace")


def launch_stack(data_dir: Path, *, partitions: int = 4, env: dict[str, str] | None = None) -> Stack:
    """Broker, worker and API; `env` adds or overrides settings (e.g. an S3 media URL)."""
    bootstrap = f"127.0.0.1:{free_port()}"
    broker = start_broker(bootstrap, data_dir / "broker.log")
    api_port = free_port()
    settings = {
        **os.environ,
        "TAMS_DATA_DIR": str(data_dir),
        "TAMS_KAFKA_BOOTSTRAP": bootstrap,
        "TAMS_KAFKA_PARTITIONS": str(partitions),
        "TAMS_API_PORT": str(api_port),
        "TAMS_WORKER_METRICS_PORT": str(free_port()),
        "TAMS_KAFKA_SESSION_TIMEOUT_S": "6",
        "TAMS_COMMAND_TIMEOUT_S": "90",
        "TAMS_DELETE_CHUNK_SEGMENTS": "10",  # so tests see deletes that answer 202 and continue
        **(env or {}),
    }
    stack = Stack(data_dir, bootstrap, api_port, settings)
    stack.processes["broker"] = broker
    try:
        stack.start_worker()
        stack.start_api()
    except BaseException:
        stack.stop()  # a stack that failed to start must not leave its processes behind
        raise
    return stack
