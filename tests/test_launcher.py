"""`tams up`: starts broker, worker and API; Ctrl-C (even pressed twice) stops every process it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.stack import free_port


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("signum, again_while_stopping", [(signal.SIGINT, False), (signal.SIGINT, True),
                                                          (signal.SIGTERM, False)])
def test_tams_up_serves_and_stops_everything_it_started(tmp_path: Path, signum: int,
                                                        again_while_stopping: bool) -> None:
    api_port, broker_port = free_port(), free_port()
    env = {**os.environ, "TAMS_DATA_DIR": str(tmp_path), "TAMS_API_PORT": str(api_port),
           "TAMS_KAFKA_BOOTSTRAP": f"127.0.0.1:{broker_port}", "TAMS_WORKER_METRICS_PORT": "0"}
    up = subprocess.Popen([sys.executable, "-m", "tams.cli", "up"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert up.poll() is None, up.stdout.read().decode() if up.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "tams up did not become healthy"
            time.sleep(0.2)
        assert listening(broker_port)
        up.send_signal(signum)
        assert up.stdout is not None
        output = ""
        if again_while_stopping:  # Ctrl-C pressed again while the children are being stopped
            while "[tams] stopping" not in output:
                line = up.stdout.readline().decode()
                assert line, output
                output += line
            up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        output += up.stdout.read().decode()
        assert "[tams] stopped" in output, output
        assert not listening(api_port) and not listening(broker_port)  # no child left behind
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
