"""Configuration: every `TAMS_*` environment variable, read once, here."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class BackendSpec(BaseModel):
    """One further storage backend in `TAMS_EXTRA_STORAGE_BACKENDS`; unset S3 fields default to the TAMS_S3_* ones."""

    media_url: str = Field(description="file:///path or s3://bucket/prefix")
    label: str = ""
    tags: dict[str, str | list[str]] = Field(default_factory=dict)
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_addressing_style: Literal["auto", "path", "virtual"] | None = None
    s3_plain_urls: bool | None = None
    provider: str | None = None
    store_product: str | None = None


class Settings(BaseSettings):
    """Process-wide settings; every other module receives values from here."""

    model_config = SettingsConfigDict(env_prefix="TAMS_", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Where the embedded stack keeps its state.")
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated.")
    kafka_partitions: int = Field(default=4, ge=1, description="Partitions for topics this service creates.")
    kafka_session_timeout_s: float = Field(
        default=30.0, gt=0, description="How long a silent worker keeps its partitions before the group moves them."
    )
    agent_group: str = Field(default="tams-agents", description="Consumer group of the agent workers.")
    kafka_fetch_wait_ms: int = Field(
        default=20, ge=1, description="Longest a consumer fetch waits for data (latency when the topic is idle)."
    )
    metadata_url: str = Field(default="", description="sqlite:///path.db (default: <data_dir>/tams.db).")
    vast_access_key: str = Field(default="", description="VAST DB access key (when not in TAMS_METADATA_URL).")
    vast_secret_key: str = Field(default="", description="VAST DB secret key (when not in TAMS_METADATA_URL).")
    vast_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of one VAST DB request.")
    media_url: str = Field(default="", description="file:///path or s3://bucket/prefix (default: <data_dir>/media).")
    media_label: str = Field(default="", description="Label of the default storage backend (default: its kind).")
    media_tags: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Tags of the default storage backend, as JSON (read-only through the API).")
    s3_endpoint: str = Field(default="", description="S3 endpoint URL (empty: AWS).")
    s3_region: str = Field(default="us-east-1", description="S3 region (used in signatures).")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", description="Bucket in the host name (virtual) or in the path (path).")
    s3_plain_urls: bool = Field(
        default=False, description="Also offer non-presigned S3 URLs (for buckets readable without a signature).")
    s3_timeout_s: float = Field(default=10.0, gt=0, description="Connect and read timeout of one S3 request.")
    extra_storage_backends: list[BackendSpec] = Field(
        default_factory=list, description="Further storage backends, as a JSON list (see the README).")
    media_retry_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait between retries while the media store is unreachable.")
    gc_interval_s: float = Field(
        default=60.0, gt=0, description="How often a worker looks for expired allocations to collect.")
    principal_header: str = Field(
        default="", description="Header an authenticating proxy sets to the caller's name (created_by/updated_by).")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = Field(default="", description="Base URL clients use to reach the API (default: from host/port).")
    url_signing_key: str = Field(default="", description="HMAC key for media URLs (default: kept in <data_dir>).")
    presigned_url_timeout_s: int = Field(
        default=3600, ge=1, le=604800, description="Lifetime of signed media URLs (SigV4 allows 7 days at most).")
    min_object_timeout_s: int = Field(default=3600, ge=1, description="How long an unregistered allocation lives.")
    media_upload_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1, description="Largest object accepted by a PUT to a media URL (held in memory)."
    )
    media_fsync: bool = Field(default=True, description="fsync each media file before its segment is committed.")
    inline_media_max_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Largest media payload accepted inline in an ingest event."
    )
    ingest_batch_max: int = Field(default=2000, ge=1, description="Most events the agent applies in one batch.")
    delete_chunk_segments: int = Field(
        default=10_000, ge=1, description="Segments one delete step removes; larger deletes answer 202 and go on."
    )
    command_timeout_s: float = Field(default=30.0, gt=0, description="How long the API waits for the agent.")
    worker_metrics_port: int = Field(default=9464, ge=0, description="Prometheus port of a worker (0: off).")
    service_name: str = "tams-pipeline"

    @model_validator(mode="after")
    def _presigned_urls_outlive_no_allocation(self) -> Settings:
        """TAMS 8.2 service.json: an allocation must outlive the URL that uploads to it."""
        if self.presigned_url_timeout_s > self.min_object_timeout_s:
            raise ValueError("TAMS_PRESIGNED_URL_TIMEOUT_S must not exceed TAMS_MIN_OBJECT_TIMEOUT_S")
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
