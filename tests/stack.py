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
    metrics_ports: dict[str, int] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.data_dir / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "tams.cli", *args], env={**self.env, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = proc
        return proc

    def start_worker(self, name: str = "worker") -> None:
        """A worker with its own metrics port (`metrics_ports[name]`)."""
        self.metrics_ports[name] = free_port()
        self._spawn(name, "worker", "--loglevel", "info",
                    env={"TAMS_WORKER_METRICS_PORT": str(self.metrics_ports[name])})

    def kill_worker(self, name: str = "worker") -> None:
        proc = self.processes.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def start_api(self, name: str = "api", port: int | None = None) -> str:
        """Start an API process (on its own port if given) and wait until it is healthy; returns its base URL."""
        proc = self._spawn(name, "api", env={"TAMS_API_PORT": str(port)} if port is not None else None)
        base_url = f"http://127.0.0.1:{port or self.api_port}"
        wait_until_answering(f"{base_url}/health", proc, name, log=self.data_dir / f"{name}.log")
        return base_url

    def worker_metric(self, metric: str, worker: str = "worker") -> float:
        """The sum of a worker's Prometheus samples named `metric` (over all labels; 0 when it has none yet)."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_ports[worker]}/metrics", timeout=10).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith((f"{metric} ", f"{metric}{{")))

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


def terminate(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; nothing if it has exited already."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_answering(url: str, process: subprocess.Popen[bytes], name: str, *, log: Path | None = None,
                         timeout: float = 60.0, healthy: bool = True) -> None:
    """Wait until `url` answers (with 200 when `healthy`), failing early if `process` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
            raise RuntimeError(f"{name} exited with {process.returncode}: {tail}")
        try:
            if httpx.get(url, timeout=1).status_code == 200 or not healthy:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not answer {url} within {timeout:.0f} s")
        time.sleep(0.1)


def launch_stack(data_dir: Path, *, partitions: int = 4, env: dict[str, str] | None = None,
                 workers: int = 1) -> Stack:
    """Broker, workers and API; `env` adds or overrides settings (e.g. an S3 media URL).

    With several workers they are named worker-1, worker-2, …; a single one is named worker."""
    bootstrap = f"127.0.0.1:{free_port()}"
    broker = start_broker(bootstrap, data_dir / "broker.log")
    api_port = free_port()
    settings = {
        **os.environ,
        "TAMS_DATA_DIR": str(data_dir),
        "TAMS_KAFKA_BOOTSTRAP": bootstrap,
        "TAMS_KAFKA_PARTITIONS": str(partitions),
        "TAMS_API_PORT": str(api_port),
        "TAMS_KAFKA_SESSION_TIMEOUT_S": "6",
        "TAMS_COMMAND_TIMEOUT_S": "90",
        "TAMS_DELETE_CHUNK_SEGMENTS": "10",  # so tests see deletes that answer 202 and continue
        **(env or {}),
    }
    stack = Stack(data_dir, bootstrap, api_port, settings)
    stack.processes["broker"] = broker
    try:
        for i in range(workers):
            stack.start_worker("worker" if workers == 1 else f"worker-{i + 1}")
        stack.start_api()
    except BaseException:
        stack.stop()  # a stack that failed to start must not leave its processes behind
        raise
    return stack
