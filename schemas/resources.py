"""Pydantic models for the TAMS 8.2 resources (Flows, Sources, Service, Segments, Storage).

The models mirror the JSON Schemas in ``api/schemas`` of the TAMS specification:

* Where a schema closes an object (``additionalProperties: false`` or
  ``unevaluatedProperties: false``) the model forbids unknown keys. Everywhere else unknown keys
  are accepted and kept, so they round-trip through the store unchanged.
* Optional fields default to ``None``, so ``model_dump(mode="json", exclude_none=True)`` gives a
  body shaped like the specification. An explicit JSON ``null`` is therefore read as "absent".
* Integers and booleans are strict (``"1920"`` is not a frame width), because the schemas type
  them strictly and silently coercing a client's mistake would store something it did not send.
* Date-times without an offset are read as UTC. Two official examples carry such values, and
  RFC 3339 (``format: date-time``) requires an offset, so the model repairs them on the way in.

Nothing here performs I/O; behaviour that needs the store (for example "unknown profile_id gives
400") belongs to the API layer.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    Tag,
    TypeAdapter,
    model_validator,
)

from schemas.timing import TimeRange, Timestamp

__all__ = [
    "AudioCodecParameters",
    "AudioEssence",
    "AudioFlow",
    "AudioTrackMapping",
    "AudioUncParameters",
    "AvcParameters",
    "BulkFailure",
    "CollectionItem",
    "ContainerMapping",
    "ContentFormat",
    "DataEssence",
    "DataFlow",
    "DateTime",
    "Error",
    "EventStreamMechanism",
    "FailedSegment",
    "Flow",
    "FlowAdapter",
    "FlowCollectionItem",
    "FlowPut",
    "FlowPutAdapter",
    "FlowSegment",
    "FlowSegmentPost",
    "FlowSegmentPostAdapter",
    "FlowSegmentPostBody",
    "FlowStatus",
    "FlowStorage",
    "FlowStoragePost",
    "GetUrl",
    "HttpRequest",
    "ImageEssence",
    "ImageFlow",
    "InitObject",
    "IsobmffMapping",
    "MediaObjectAllocation",
    "MimeLike",
    "MimeType",
    "Mp2tsMapping",
    "MultiEssence",
    "MultiFlow",
    "MxfMapping",
    "ProfileFlowPut",
    "Ratio",
    "Rational",
    "Service",
    "ServicePost",
    "Source",
    "StorageBackend",
    "StorageBackendInfo",
    "Tags",
    "TECHNICAL_FIELDS",
    "UncontrolledGetUrl",
    "Uuid",
    "VideoEssence",
    "VideoFlow",
    "VideoUncParameters",
]


# --------------------------------------------------------------------------------------------
# Shared building blocks
# --------------------------------------------------------------------------------------------


class _Open(BaseModel):
    """Base for objects whose schema allows unknown keys: accept them and keep them."""

    model_config = ConfigDict(
        extra="allow",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class _Closed(BaseModel):
    """Base for objects the schema closes (``additionalProperties``/``unevaluatedProperties``
    false): an unknown key is a client error, not data to keep."""

    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


_UUID_PATTERN = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)


def _check_uuid_spelling(value: Any) -> Any:
    """Hold UUIDs to ``uuid.json``: lower-case, hyphenated, RFC 4122 variant, version 1 to 5.

    ``uuid.UUID`` alone would also take upper case, braces, ``urn:uuid:`` and versions 6 to 8,
    none of which the schema accepts, so the check runs before the conversion.
    """
    text = str(value) if isinstance(value, UUID) else value
    if isinstance(text, str) and not _UUID_PATTERN.fullmatch(text):
        raise ValueError(
            "must be a lower-case hyphenated UUID of version 1-5 (TAMS uuid.json)"
        )
    return value


Uuid = Annotated[UUID, BeforeValidator(_check_uuid_spelling)]
"""A UUID as TAMS spells it; dumps as the canonical lower-case string."""


def _assume_utc(value: datetime) -> datetime:
    """Give offset-less date-times the UTC offset so that they serialise as RFC 3339."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


DateTime = Annotated[datetime, AfterValidator(_assume_utc)]
"""A ``format: date-time`` value; naive input is taken to be UTC."""

PositiveInt = Annotated[StrictInt, Field(gt=0)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]

MimeLike = Annotated[str, StringConstraints(pattern=r"^[^\s/]+/[^\s/]+$")]
"""The loose ``type/subtype`` pattern that ``flow-technical.json`` uses for codec and container."""

MimeType = Annotated[
    str,
    StringConstraints(
        pattern=(
            r"^(application|audio|font|example|image|message|model|multipart|text|video"
            r"|x-(?:[0-9A-Za-z!#$%&'*+.^_`|~-]+))/([0-9A-Za-z!#$%&'*+.^_`|~-]+)$"
        )
    ),
]
"""The stricter RFC 2045 pattern of ``mime-type.json`` (used by storage allocation)."""

Tags = dict[str, str | list[str]]
"""Free-form tags: each value is one string or a list of strings (``tags.json``)."""


def _non_negative(value: int) -> int:
    if value < 0:
        raise ValueError("must not be negative")
    return value


NonNegativeTimestamp = Annotated[Timestamp, AfterValidator(_non_negative)]
"""A timestamp the spec says "cannot be negative", such as ``last_duration``."""


class ContentFormat(StrEnum):
    """The content format URNs of ``content-format.json``; note image uses ``x-tam``."""

    VIDEO = "urn:x-nmos:format:video"
    IMAGE = "urn:x-tam:format:image"
    AUDIO = "urn:x-nmos:format:audio"
    DATA = "urn:x-nmos:format:data"
    MULTI = "urn:x-nmos:format:multi"


class FlowStatus(StrEnum):
    """Client-maintained ingest status of a Flow; indicative only (``flow-status.json``)."""

    AWAITING_CONTENT = "awaiting_content"
    INGESTING = "ingesting"
    REPLICATION_IN_PROGRESS = "replication_in_progress"
    CLOSED_COMPLETE = "closed_complete"


class Rational(_Open):
    """A rate or duration as a fraction whose denominator defaults to 1 (frame_rate,
    segment_duration)."""

    numerator: PositiveInt
    denominator: PositiveInt = 1


class Ratio(_Open):
    """An aspect ratio: the schema requires both terms, unlike ``Rational``."""

    numerator: PositiveInt
    denominator: PositiveInt


# --------------------------------------------------------------------------------------------
# Collections and container mapping
# --------------------------------------------------------------------------------------------


class AudioTrackMapping(_Open):
    """Which container channels carry the Flow's channels, as a list or an ``a_b`` range."""

    channel_numbers: Annotated[list[NonNegativeInt], Field(min_length=1)] | None = None
    channel_range: Annotated[str, StringConstraints(pattern=r"^[0-9]+_[0-9]+$")] | None = None


class Mp2tsMapping(_Open):
    """MPEG-2 TS: the elementary stream is found by its packet id."""

    pid: StrictInt | None = None


class MxfMapping(_Open):
    """MXF: the essence is found by package UID (UMID or UUID URN) and track id."""

    package_uid: (
        Annotated[
            str,
            StringConstraints(
                pattern=(
                    r"^urn:smpte:umid:[0-9a-fA-F]{8}(.[0-9a-fA-F]{8}){7}$"
                    r"|^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
                    r"-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
                )
            ),
        ]
        | None
    ) = None
    track_id: StrictInt | None = None


class IsobmffMapping(_Open):
    """ISO BMFF (MP4, MOV): the essence is found by track id."""

    track_id: StrictInt | None = None


class ContainerMapping(_Open):
    """Where a Flow's essence sits inside a (possibly shared) container."""

    track_index: NonNegativeInt | None = None
    format_track_index: NonNegativeInt | None = None
    audio_track: AudioTrackMapping | None = None
    mp2ts_container: Mp2tsMapping | None = None
    mxf_container: MxfMapping | None = None
    isobmff_container: IsobmffMapping | None = None


class CollectionItem(_Open):
    """One member of a Source or Flow collection, with an optional human-readable role."""

    id: Uuid
    role: str | None = None


class FlowCollectionItem(CollectionItem):
    """A Flow collection member; a muxed multi Flow also says where the member sits in its
    container."""

    container_mapping: ContainerMapping | None = None


# --------------------------------------------------------------------------------------------
# Essence parameters, one per format
# --------------------------------------------------------------------------------------------


class VideoUncParameters(_Open):
    """Pixel packing of uncompressed video."""

    unc_type: Literal[
        "planar", "YUYV", "UYVY", "AYUV", "v210", "v216", "RGB", "RGBx", "xRGB",
        "BGRx", "xBGR", "RGBA", "ARGB", "BGRA", "ABGR", "alpha",
    ]


class AvcParameters(_Open):
    """The H.264 profile, level and flags bytes that build a codecs string."""

    profile: StrictInt
    level: StrictInt
    flags: StrictInt


class VideoEssence(_Closed):
    """Video essence parameters. A fixed-rate Flow must give ``frame_rate``; a variable-rate
    Flow (``vfr: true``) must not, which is the schema's if/then/else."""

    frame_width: PositiveInt
    frame_height: PositiveInt
    frame_rate: Rational | None = None
    vfr: StrictBool | None = None
    bit_depth: PositiveInt | None = None
    interlace_mode: (
        Literal["progressive", "interlaced_tff", "interlaced_bff", "interlaced_psf"] | None
    ) = None
    colorspace: Literal["BT601", "BT709", "BT2020", "BT2100"] | None = None
    transfer_characteristic: Literal["SDR", "HLG", "PQ"] | None = None
    aspect_ratio: Ratio | None = None
    pixel_aspect_ratio: Ratio | None = None
    component_type: Literal["YCbCr", "RGB"] | None = None
    horiz_chroma_subs: PositiveInt | None = None
    vert_chroma_subs: PositiveInt | None = None
    unc_parameters: VideoUncParameters | None = None
    avc_parameters: AvcParameters | None = None
    init_segments: StrictBool | None = None

    @model_validator(mode="after")
    def _frame_rate_agrees_with_vfr(self) -> VideoEssence:
        if self.vfr:
            if self.frame_rate is not None:
                raise ValueError("frame_rate must not be set when vfr is true")
        elif self.frame_rate is None:
            raise ValueError("frame_rate is required unless vfr is true")
        return self


class AudioCodecParameters(_Open):
    """Coded audio details needed to build a codecs string or size buffers."""

    coded_frame_size: StrictInt | None = None
    mp4_oti: StrictInt | None = None


class AudioUncParameters(_Open):
    """How uncompressed multi-channel audio is laid out."""

    unc_type: Literal["interleaved", "planar", "pairs"]


class AudioEssence(_Closed):
    """Audio essence parameters: sample rate and channel count are required."""

    sample_rate: PositiveInt
    channels: PositiveInt
    bit_depth: PositiveInt | None = None
    codec_parameters: AudioCodecParameters | None = None
    unc_parameters: AudioUncParameters | None = None
    init_segments: StrictBool | None = None


class ImageEssence(_Closed):
    """Still-image essence parameters; images have no init segments."""

    frame_width: PositiveInt
    frame_height: PositiveInt
    aspect_ratio: Ratio | None = None


class DataEssence(_Closed):
    """Data essence parameters; ``data_type`` is a URN such as ``urn:x-tams:data:subtitle``."""

    data_type: str | None = None
    init_segments: StrictBool | None = None


class MultiEssence(_Closed):
    """Multi-essence parameters: only whether the muxed segments need init segments."""

    init_segments: StrictBool | None = None


# --------------------------------------------------------------------------------------------
# Flows
# --------------------------------------------------------------------------------------------

TECHNICAL_FIELDS: frozenset[str] = frozenset(
    {
        "format",
        "codec",
        "container",
        "avg_bit_rate",
        "segment_duration",
        "container_mapping",
        "essence_parameters",
    }
)
"""Keys a Profile supplies; a Flow PUT naming a ``profile_id`` must not send them too."""


class _FlowCommon(_Open):
    """Fields every Flow has (``flow-common.json``). The server owns ``created``,
    ``metadata_updated``, ``segments_updated``, ``collected_by`` and ``timerange``."""

    id: Uuid
    source_id: Uuid
    label: str | None = None
    description: str | None = None
    created_by: str | None = None
    updated_by: str | None = None
    tags: Tags | None = None
    metadata_version: str | None = None
    generation: NonNegativeInt | None = None
    created: DateTime | None = None
    metadata_updated: DateTime | None = None
    segments_updated: DateTime | None = None
    status: FlowStatus | None = None
    read_only: StrictBool | None = None
    max_bit_rate: NonNegativeInt | None = None
    timerange: TimeRange | None = None
    flow_collection: list[FlowCollectionItem] | None = None
    collected_by: list[Uuid] | None = None


class _FlowBase(_FlowCommon):
    """Common fields plus the technical fields every format shares (``flow-technical.json``)."""

    codec: MimeLike | None = None
    container: MimeLike | None = None
    avg_bit_rate: NonNegativeInt | None = None
    segment_duration: Rational | None = None
    container_mapping: ContainerMapping | None = None
    # A UUID in a Flow read (flow-get.json). In a PUT, "" is how a client breaks the link to a
    # Profile before changing technical fields; flow-put.json allows that because profile_id is
    # undeclared on the format branches. Services should never store or return "".
    profile_id: Uuid | Literal[""] | None = None


class VideoFlow(_FlowBase):
    """A video Flow: codec and essence parameters are required."""

    format: Literal[ContentFormat.VIDEO] = ContentFormat.VIDEO
    codec: MimeLike
    essence_parameters: VideoEssence


class AudioFlow(_FlowBase):
    """An audio Flow: codec and essence parameters are required."""

    format: Literal[ContentFormat.AUDIO] = ContentFormat.AUDIO
    codec: MimeLike
    essence_parameters: AudioEssence


class ImageFlow(_FlowBase):
    """A still-image Flow, e.g. a thumbnail track."""

    format: Literal[ContentFormat.IMAGE] = ContentFormat.IMAGE
    codec: MimeLike
    essence_parameters: ImageEssence


class DataFlow(_FlowBase):
    """A data Flow such as subtitles; the essence object is required even if empty."""

    format: Literal[ContentFormat.DATA] = ContentFormat.DATA
    codec: MimeLike
    essence_parameters: DataEssence


class MultiFlow(_FlowBase):
    """A multi-essence Flow: collects other Flows and, if muxed, has its own container."""

    format: Literal[ContentFormat.MULTI] = ContentFormat.MULTI
    essence_parameters: MultiEssence | None = None


Flow = Annotated[
    VideoFlow | AudioFlow | ImageFlow | DataFlow | MultiFlow,
    Field(discriminator="format"),
]
"""A fully described Flow (``flow-get.json``), chosen by its ``format``."""

FlowAdapter: TypeAdapter[Flow] = TypeAdapter(Flow)


class ProfileFlowPut(_FlowCommon):
    """A Flow PUT that takes its technical fields from a stored Profile.

    The spec makes sending a ``profile_id`` together with any Profile-supplied field a 400
    error, so those keys are rejected here rather than kept as extras.
    """

    profile_id: Uuid

    @model_validator(mode="before")
    @classmethod
    def _no_technical_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            clash = sorted(TECHNICAL_FIELDS.intersection(data))
            if clash:
                raise ValueError(
                    "a Flow created from a Profile must not also set " + ", ".join(clash)
                )
        return data


def _flow_put_branch(value: Any) -> str | None:
    """Pick the ``flow-put.json`` branch: a non-empty ``profile_id`` means the Profile branch,
    otherwise the ``format`` decides."""
    if isinstance(value, dict):
        profile_id, fmt = value.get("profile_id"), value.get("format")
    else:
        profile_id, fmt = getattr(value, "profile_id", None), getattr(value, "format", None)
    if profile_id not in (None, ""):
        return "profile"
    return None if fmt is None else str(fmt)


FlowPut = Annotated[
    Annotated[ProfileFlowPut, Tag("profile")]
    | Annotated[VideoFlow, Tag(ContentFormat.VIDEO.value)]
    | Annotated[AudioFlow, Tag(ContentFormat.AUDIO.value)]
    | Annotated[ImageFlow, Tag(ContentFormat.IMAGE.value)]
    | Annotated[DataFlow, Tag(ContentFormat.DATA.value)]
    | Annotated[MultiFlow, Tag(ContentFormat.MULTI.value)],
    Discriminator(_flow_put_branch),
]
"""A ``PUT /flows/{id}`` body (``flow-put.json``): either a Profile reference or a full Flow."""

FlowPutAdapter: TypeAdapter[FlowPut] = TypeAdapter(FlowPut)


# --------------------------------------------------------------------------------------------
# Sources and the service
# --------------------------------------------------------------------------------------------


class Source(_Open):
    """A Source: the abstract media that one or more Flows represent. Collections are derived
    by the server from Flow collections."""

    id: Uuid
    format: ContentFormat
    label: str | None = None
    description: str | None = None
    created_by: str | None = None
    updated_by: str | None = None
    created: DateTime | None = None
    updated: DateTime | None = None
    tags: Tags | None = None
    source_collection: list[CollectionItem] | None = None
    collected_by: list[Uuid] | None = None


class EventStreamMechanism(_Open):
    """An event stream the service offers (e.g. ``webhooks``) and where it is documented."""

    name: str
    docs: str | None = None
    config: dict[str, Any] | None = None


_MIN_OBJECT_TIMEOUT_NS = 300 * 1_000_000_000
_MIN_PRESIGNED_URL_TIMEOUT_NS = 30 * 1_000_000_000


def _at_least(limit_ns: int, text: str):
    def check(value: int) -> int:
        if value < limit_ns:
            raise ValueError(f"must be {text} or greater")
        return value

    return check


class Service(_Open):
    """What ``GET /service`` reports about this instance.

    The timeout floors (``300:0`` and ``30:0``) are MUSTs in the schema descriptions and are
    enforced. The further MUST that ``min_presigned_url_timeout <= min_object_timeout`` is not,
    because the official example breaks it; the service configuration should check it.
    """

    type: Annotated[str, StringConstraints(pattern=r"^urn:x-tams:service")]
    api_version: Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")]
    min_object_timeout: Annotated[
        Timestamp, AfterValidator(_at_least(_MIN_OBJECT_TIMEOUT_NS, "300:0"))
    ]
    min_presigned_url_timeout: (
        Annotated[Timestamp, AfterValidator(_at_least(_MIN_PRESIGNED_URL_TIMEOUT_NS, "30:0"))]
        | None
    ) = None
    name: str | None = None
    description: str | None = None
    service_version: str | None = None
    event_stream_mechanisms: list[EventStreamMechanism] | None = None


class ServicePost(_Open):
    """A ``POST /service`` body: only the name and description can change."""

    name: str | None = None
    description: str | None = None


# --------------------------------------------------------------------------------------------
# Storage backends and object URLs
# --------------------------------------------------------------------------------------------


class StorageBackendInfo(_Open):
    """Technical metadata of a storage backend (``storage-backend.json``), all optional; it is
    shared by the backend listing and by verbose ``get_urls`` entries."""

    store_type: Literal["http_object_store"] | None = None
    provider: str | None = None
    region: str | None = None
    availability_zone: str | None = None
    store_product: str | None = None
    tags: Tags | None = None


class StorageBackend(StorageBackendInfo):
    """One entry of ``GET /service/storage-backends``; configured at deploy time."""

    id: Uuid
    store_type: Literal["http_object_store"]
    provider: str
    store_product: str
    label: str | None = None
    default_storage: StrictBool | None = None


class GetUrl(StorageBackendInfo):
    """One place an object can be read from. ``controlled`` unset means true; the backend
    fields appear only when the client asked for verbose storage."""

    model_config = ConfigDict(extra="forbid")

    url: str
    presigned: StrictBool | None = None
    label: str | None = None
    controlled: StrictBool | None = None
    storage_id: Uuid | None = None


# --------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------


class InitObject(_Closed):
    """The init segment a media object needs before decoding; shared by many segments."""

    object_id: str
    get_urls: list[GetUrl] | None = None


class FlowSegment(_Open):
    """A segment as ``GET /flows/{id}/segments`` returns it. Timing fields follow
    ``flow_ts = media_ts + ts_offset``; ``sample_offset``/``sample_count`` are deprecated but
    kept if stored."""

    object_id: str
    timerange: TimeRange
    ts_offset: Timestamp | None = None
    last_duration: NonNegativeTimestamp | None = None
    object_timerange: TimeRange | None = None
    sample_offset: StrictInt | None = None
    sample_count: StrictInt | None = None
    key_frame_count: StrictInt | None = None
    init_object: InitObject | None = None
    get_urls: list[GetUrl] | None = None


class UncontrolledGetUrl(_Open):
    """A client-registered (uncontrolled) URL; the label is required so it can be filtered."""

    url: str
    label: str


class FlowSegmentPost(_Open):
    """One segment in a ``POST /flows/{id}/segments`` body. ``get_urls`` only adds
    uncontrolled URLs; the server supplies the controlled ones."""

    object_id: str
    timerange: TimeRange
    init_object_id: str | None = None
    ts_offset: Timestamp | None = None
    object_timerange: TimeRange | None = None
    last_duration: NonNegativeTimestamp | None = None
    sample_offset: StrictInt | None = None
    sample_count: StrictInt | None = None
    get_urls: list[UncontrolledGetUrl] | None = None
    key_frame_count: StrictInt | None = None


FlowSegmentPostBody = FlowSegmentPost | list[FlowSegmentPost]
"""The segment POST body is one segment or an array of them (ADR-0029)."""

FlowSegmentPostAdapter: TypeAdapter[FlowSegmentPostBody] = TypeAdapter(FlowSegmentPostBody)


class Error(_Open):
    """Error details (``error.json``), as used in failed-segment lists and error bodies."""

    type: str
    summary: str
    time: DateTime
    traceback: list[str] | None = None


class FailedSegment(_Open):
    """A segment that could not be registered, and optionally why."""

    object_id: str
    timerange: TimeRange | None = None
    error: Error | None = None


class BulkFailure(_Open):
    """The 200 body of a partially failed segment POST; the other segments were created."""

    failed_segments: list[FailedSegment]


# --------------------------------------------------------------------------------------------
# Storage allocation
# --------------------------------------------------------------------------------------------


class FlowStoragePost(_Open):
    """A ``POST /flows/{id}/storage`` body: ask for ``limit`` new object ids, or name the
    ``object_ids`` yourself (for replication), never both. ``content_type`` is only for init
    segments whose type differs from the Flow's container."""

    limit: StrictInt | None = None
    object_ids: list[str] | None = None
    storage_id: Uuid | None = None
    content_type: MimeType | None = None
    presigned: StrictBool | None = None

    @model_validator(mode="after")
    def _limit_or_object_ids(self) -> FlowStoragePost:
        if self.limit is not None and self.object_ids is not None:
            raise ValueError("limit and object_ids are mutually exclusive")
        return self


class HttpRequest(_Open):
    """An HTTP request the client should make; the JSON key is ``content-type``, so the
    Python field is aliased."""

    url: str
    content_type: str | None = Field(default=None, alias="content-type")
    headers: dict[str, str] | None = None
    body: str | None = None


class MediaObjectAllocation(_Open):
    """A freshly allocated object id and where to upload its bytes."""

    object_id: str
    put_url: HttpRequest
    presigned: StrictBool | None = None


class FlowStorage(_Closed):
    """The 201 body of a storage allocation (``flow-storage.json``, a closed object)."""

    media_objects: list[MediaObjectAllocation] = Field(default_factory=list)


class Profile(_Open):
    """A named, immutable set of technical Flow fields (``profile.json``); never a multi Flow."""

    id: Uuid
    label: str | None = None
    description: str | None = None
    created_by: str | None = None
    created: DateTime | None = None
    tags: Tags | None = None
    flow_metadata: dict[str, Any]

    @model_validator(mode="after")
    def _flow_metadata_describes_a_flow(self) -> Profile:
        metadata = self.flow_metadata
        if metadata.get("format") == ContentFormat.MULTI.value:
            raise ValueError("a Profile cannot describe a multi Flow")
        placeholder = "00000000-0000-4000-8000-000000000000"
        FlowAdapter.validate_python({**metadata, "id": placeholder, "source_id": placeholder})
        return self
