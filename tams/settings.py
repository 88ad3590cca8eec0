"""Configuration: every `TAMS_*` environment variable, read once, here."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide settings; every other module receives values from here."""

    model_config = SettingsConfigDict(env_prefix="TAMS_", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Where the embedded stack keeps its state.")
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated.")
    kafka_partitions: int = Field(default=4, ge=1, description="Partitions for topics this service creates.")
    kafka_session_timeout_s: float = Field(
        default=30.0, gt=0, description="How long a silent worker keeps its partitions before the group moves them."
    )
    agent_group: str = Field(default="tams-agents", description="Consumer group (Faust app id) of the agents.")
    kafka_fetch_wait_ms: int = Field(
        default=20, ge=1, description="Longest a consumer fetch waits for data (latency when the topic is idle)."
    )
    metadata_url: str = Field(default="", description="sqlite:///path.db (default: <data_dir>/tams.db).")
    media_url: str = Field(default="", description="file:///path (default: <data_dir>/media).")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = Field(default="", description="Base URL clients use to reach the API (default: from host/port).")
    url_signing_key: str = Field(default="", description="HMAC key for media URLs (default: kept in <data_dir>).")
    presigned_url_timeout_s: int = Field(default=3600, ge=30, description="Lifetime of signed media URLs.")
    min_object_timeout_s: int = Field(default=3600, ge=300, description="How long an unregistered allocation lives.")
    media_upload_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1, description="Largest object accepted by a PUT to a media URL (held in memory)."
    )
    media_fsync: bool = Field(default=True, description="fsync each media file before its segment is committed.")
    inline_media_max_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Largest media payload accepted inline in an ingest event."
    )
    ingest_batch_max: int = Field(default=2000, ge=1, description="Most events the agent applies in one batch.")
    ingest_max_pending: int = Field(
        default=10_000, ge=1, description="Events a worker holds unapplied at most (bounds rebalance time)."
    )
    delete_chunk_segments: int = Field(
        default=10_000, ge=1, description="Segments one delete step removes; larger deletes answer 202 and go on."
    )
    command_timeout_s: float = Field(default=30.0, gt=0, description="How long the API waits for the agent.")
    worker_metrics_port: int = Field(default=9464, ge=0, description="Prometheus port of a worker (0: off).")
    service_name: str = "tams-pipeline"

    @model_validator(mode="after")
    def _presigned_urls_outlive_no_allocation(self) -> Settings:
        if self.presigned_url_timeout_s > self.min_object_timeout_s:
            raise ValueError("TAMS_PRESIGNED_URL_TIMEOUT_S must not exceed TAMS_MIN_OBJECT_TIMEOUT_S (TAMS 8.2 service.json)")
        return self

    @cached_property
    def metadata_location(self) -> str:
        return self.metadata_url or f"sqlite:///{(self.data_dir / 'tams.db').resolve()}"

    @cached_property
    def media_location(self) -> str:
        return self.media_url or f"file://{(self.data_dir / 'media').resolve()}"

    @cached_property
    def api_base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @cached_property
    def signing_key(self) -> bytes:
        """The configured key, or one generated once and kept in the data directory so all processes share it."""
        if self.url_signing_key:
            return self.url_signing_key.encode()
        path = self.data_dir / "url-signing.key"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Write then link into place, so a concurrent reader never sees an empty key file.
            staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
            staged.write_text(secrets.token_hex(32))
            try:
                os.link(staged, path)
            except FileExistsError:
                pass
            finally:
                staged.unlink()
        return path.read_text().strip().encode()
