"""s3rver (npm), a second real S3 HTTP server for tests: unlike moto it refuses expired presigned URLs.

It is installed on first use with npm into a cache directory (and Node.js with apt-get when the
machine has none and we are root), then started on a free port with one bucket. Its fixed
credentials are S3RVER/S3RVER. It checks expiry but not signatures (verified by hand: a URL with an
altered signature is served), so only expiry is tested against it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.stack import free_port, terminate, wait_until_answering

VERSION = "3.7.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tams-tests" / f"s3rver-{VERSION}"
ACCESS_KEY = SECRET_KEY = "S3RVER"


class S3rverUnavailable(RuntimeError):
    """Node.js or the s3rver package could not be installed."""


def _ensure_node() -> str:
    node = shutil.which("node")
    if node and shutil.which("npm"):
        return node
    if os.geteuid() != 0:
        raise S3rverUnavailable("Node.js and npm are needed for s3rver: install them (apt-get install nodejs npm)")
    print("installing Node.js and npm with apt-get for the s3rver tests", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nodejs", "npm"], check=True, env=env, stdout=subprocess.DEVNULL)
    return shutil.which("node") or "node"


def _ensure_s3rver() -> Path:
    script = CACHE / "node_modules" / "s3rver" / "bin" / "s3rver.js"
    if not script.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["npm", "install", "--prefix", str(CACHE), f"s3rver@{VERSION}", "--no-audit",
                                 "--no-fund", "--loglevel=error"], capture_output=True, text=True)
        if result.returncode != 0 or not script.exists():
            raise S3rverUnavailable(f"npm install s3rver@{VERSION} failed: {result.stderr[-2000:]}")
    return script


@dataclass
class S3rver:
    endpoint: str
    process: subprocess.Popen[bytes]
    directory: Path
    port: int

    @classmethod
    def start(cls, directory: Path, bucket: str, port: int | None = None) -> S3rver:
        """Start on `port` (default: a free one) over `directory`, where objects persist across restarts."""
        node = _ensure_node()
        script = _ensure_s3rver()
        port = port or free_port()
        directory.mkdir(parents=True, exist_ok=True)
        log = open(directory.parent / "s3rver.log", "ab")
        process = subprocess.Popen([node, str(script), "-d", str(directory), "-a", "127.0.0.1", "-p", str(port),
                                    "--configure-bucket", bucket, "--no-vhost-buckets"],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        server = cls(f"http://127.0.0.1:{port}", process, directory, port)
        try:
            wait_until_answering(server.endpoint, process, "s3rver", log=directory.parent / "s3rver.log", timeout=30,
                                 healthy=False)
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        terminate(self.process)
