"""A real S3 HTTP server for tests: moto's server mode, in its own process, on a free port.

moto keeps objects in memory, so an outage is simulated by stopping the process (SIGSTOP: clients
connect but get no answer, as with a hung server) and continuing it (SIGCONT), which keeps every
object. moto checks neither signatures nor expiry; see the README on what that leaves unverified.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3

from stores.s3 import client_config
from tests.stack import free_port, terminate, wait_until_answering

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "tams-test-key", "AWS_SECRET_ACCESS_KEY": "tams-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, log_path: Path) -> MotoServer:
        port = free_port()
        log = open(log_path, "ab")
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, **CREDENTIALS})
        server = cls(f"http://127.0.0.1:{port}", process)
        try:
            wait_until_answering(server.endpoint, process, "moto server", log=log_path, timeout=30, healthy=False)
        except BaseException:
            server.stop()
            raise
        return server

    def client(self):  # noqa: ANN201 - a boto3 S3 client
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            config=client_config(addressing_style="path", timeout_s=10))

    def pause(self) -> None:
        """Freeze the server: connections are accepted by the kernel but never answered."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
        terminate(self.process)
