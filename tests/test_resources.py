"""Tests for schemas/resources.py against the official TAMS 8.2 schemas and examples.

Three kinds of test:

* Every official example of a resource this module models parses into its model, and the
  JSON dump (``mode="json", exclude_none=True``) validates against the official JSON Schema of
  that resource and says the same thing as the example (modulo two documented normalisations).
* Bodies the spec forbids are rejected by the models; where the rule is in the JSON Schema, a
  companion test proves the official schema rejects the same body, so the model is not stricter
  than the spec by accident. Where the model is deliberately stricter (a rule that lives only in
  the prose), the test says so.
* Smaller behaviours the API layer relies on (aliases, kept extras, branch selection).

The spec lives outside the repository (read-only, at ``../shared/tams-spec`` beside the clone, as in
CI). Without it ``test_official_spec_is_present`` fails and the spec-based tests are skipped, so a
conformance check that did not run is never a pass.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from uuid import UUID

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import TypeAdapter, ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from schemas.resources import (
    AudioFlow,
    BulkFailure,
    DataFlow,
    Error,
    Flow,
    FlowAdapter,
    FlowCollectionItem,
    FlowPutAdapter,
    FlowSegment,
    FlowSegmentPost,
    FlowSegmentPostAdapter,
    FlowStorage,
    FlowStoragePost,
    GetUrl,
    HttpRequest,
    ImageFlow,
    InitObject,
    MultiFlow,
    ProfileFlowPut,
    Service,
    ServicePost,
    Source,
    StorageBackend,
    Tags,
    UncontrolledGetUrl,
    VideoFlow,
)
from schemas.timing import TimeRange

SPEC = Path(__file__).resolve().parents[2] / "shared" / "tams-spec"
SCHEMAS = SPEC / "api" / "schemas"
EXAMPLES = SPEC / "api" / "examples"

requires_spec = pytest.mark.skipif(
    not SCHEMAS.is_dir() or not EXAMPLES.is_dir(),
    reason=f"official TAMS spec not found at {SPEC} (test_official_spec_is_present fails)",
)


def test_official_spec_is_present() -> None:
    """The spec-based checks below only skip when this one fails, so the run cannot pass without them."""
    assert SCHEMAS.is_dir() and EXAMPLES.is_dir(), f"official TAMS spec not found at {SPEC}"


# --------------------------------------------------------------------------------------------
# Harness: official schemas in a registry keyed by file name, and a strict date-time check
# --------------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_rfc3339(value: object) -> bool:
    """jsonschema's own date-time check needs an optional package; this one always runs, so
    dumps are held to RFC 3339 (offset required)."""
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


_registry: Registry | None = None


def official_validator(schema_file: str) -> Draft202012Validator:
    """A Draft 2020-12 validator for one official schema; ``$ref``s resolve by file name."""
    global _registry
    if _registry is None:
        _registry = Registry().with_resources(
            (path.name, DRAFT202012.create_resource(json.loads(path.read_text())))
            for path in SCHEMAS.glob("*.json")
        )
    return Draft202012Validator(
        {"$ref": schema_file}, registry=_registry, format_checker=FORMATS
    )


def assert_valid(instance: Any, schema_file: str) -> None:
    errors = sorted(official_validator(schema_file).iter_errors(instance), key=str)
    assert not errors, f"{schema_file}: " + "; ".join(e.message for e in errors[:5])


def is_valid(instance: Any, schema_file: str) -> bool:
    return official_validator(schema_file).is_valid(instance)


def load_example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def _canonical(value: Any) -> Any:
    """Undo the two normalisations the models apply on purpose, so an example and its dump can
    be compared for meaning: date-times become instants (naive ones read as UTC), and a fraction
    without ``denominator`` gets the schema default of 1."""
    if isinstance(value, dict):
        out = {k: _canonical(v) for k, v in value.items()}
        if "numerator" in out and "denominator" not in out:
            out["denominator"] = 1
        return out
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", value):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return value


# --------------------------------------------------------------------------------------------
# The example table: each official example is either mapped to a model and schema here, or
# listed in OUT_OF_SCOPE with the reason. test_every_official_example_is_accounted_for keeps
# this honest when the spec gains an example.
# --------------------------------------------------------------------------------------------

FlowList = TypeAdapter(list[Flow])
SourceList = TypeAdapter(list[Source])
SegmentList = TypeAdapter(list[FlowSegment])
BackendList = TypeAdapter(list[StorageBackend])
FlowCollection = TypeAdapter(list[FlowCollectionItem])
TagsAdapter = TypeAdapter(Tags)


def _model(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


# (example file, adapter, official schema, schema applies to each list item, expected type)
CASES: list[tuple[str, TypeAdapter, str, bool, type | None]] = [
    *[
        (f"flow-get-200-{name}.json", FlowAdapter, "flow-get.json", False, cls)
        for name, cls in [
            ("audio-aac-multi", AudioFlow),
            ("audio-aac", AudioFlow),
            ("audio-wav", AudioFlow),
            ("data-ttml", DataFlow),
            ("image-jpeg", ImageFlow),
            ("multi-container-map", MultiFlow),
            ("multi", MultiFlow),
            ("video-h264-cleanfeed", VideoFlow),
            ("video-h264-fmp4", VideoFlow),
            ("video-h264-mxf", VideoFlow),
            ("video-h264-vfr", VideoFlow),
            ("video-h264", VideoFlow),
            ("video-jpeg-jp2", VideoFlow),
            ("video-jpeg-mxf", VideoFlow),
            ("video-raw", VideoFlow),
        ]
    ],
    ("flows-get-200.json", FlowList, "flow-get.json", True, None),
    # A PUT body is read with FlowPutAdapter and checked against flow-put.json ...
    ("flow-put.json", FlowPutAdapter, "flow-put.json", False, AudioFlow),
    ("flow-put-multi.json", FlowPutAdapter, "flow-put.json", False, MultiFlow),
    # ... including the Profile branch, which has no format and so is not a `Flow` (see
    # test_profile_flow_put_is_not_a_full_flow).
    ("flow-put-profile.json", FlowPutAdapter, "flow-put.json", False, ProfileFlowPut),
    # The 201 answer to a PUT is a Flow as read back.
    ("flow-put-201.json", FlowAdapter, "flow-get.json", False, AudioFlow),
    ("source-get-200-basic.json", _model(Source), "source.json", False, Source),
    ("source-get-200-multi.json", _model(Source), "source.json", False, Source),
    ("source-get-200-tags.json", _model(Source), "source.json", False, Source),
    ("sources-get-200.json", SourceList, "source.json", True, None),
    ("service-get-200.json", _model(Service), "service.json", False, Service),
    ("service-post.json", _model(ServicePost), "service-post.json", False, ServicePost),
    ("flow-segments-get-200.json", SegmentList, "flow-segment.json", True, None),
    ("flow-segments-get-200-init.json", SegmentList, "flow-segment.json", True, None),
    ("flow-segments-get-200-multiple-urls.json", SegmentList, "flow-segment.json", True, None),
    ("flow-segments-get-200-object-timerange.json", SegmentList, "flow-segment.json", True, None),
    ("flow-segment-post.json", FlowSegmentPostAdapter, "flow-segment-post.json", False, FlowSegmentPost),
    ("flow-segment-partial-failure.json", _model(BulkFailure), "flow-segment-bulk-failure.json", False, BulkFailure),
    ("flow-storage-post.json", _model(FlowStoragePost), "flow-storage-post.json", False, FlowStoragePost),
    ("flow-storage-post-object_ids.json", _model(FlowStoragePost), "flow-storage-post.json", False, FlowStoragePost),
    ("flow-storage-post-201.json", _model(FlowStorage), "flow-storage.json", False, FlowStorage),
    ("flow-storage-post-201-wav.json", _model(FlowStorage), "flow-storage.json", False, FlowStorage),
    ("storage-backends-get-200.json", BackendList, "storage-backends-list.json", False, None),
    ("flow-collection-get-200.json", FlowCollection, "flow-collection.json", False, None),
    ("flow-collection-put.json", FlowCollection, "flow-collection.json", False, None),
    ("flow-tags-get-200.json", TagsAdapter, "tags.json", False, None),
]

# Examples of resources this module does not model, and why. Where part of such an example is
# one of our models, a test below checks that part (named in the comment).
OUT_OF_SCOPE: dict[str, str] = {
    "deletion-request-get-200.json": "deletion requests are not modelled here",
    "deletion-requests-get-200.json": "deletion requests are not modelled here",
    "webhook-get-200-list.json": "webhooks are not modelled here",
    "webhook-get-200.json": "webhooks are not modelled here",
    "webhook-post.json": "webhooks are not modelled here",
    "webhook-put.json": "webhooks are not modelled here",
    # The Object resource is not modelled here, but its get_urls are GetUrl and its init object
    # URLs too: test_object_examples_get_urls_are_get_urls.
    "objects-get-200.json": "objects are not modelled here (get_urls checked)",
    "objects-get-200-init.json": "objects are not modelled here (get_urls checked)",
    # The uncontrolled variant is the UncontrolledGetUrl shape:
    # test_uncontrolled_instance_example_is_an_uncontrolled_get_url.
    "objects-instances-controlled-post.json": "object instance requests are not modelled here",
    "objects-instances-uncontrolled-post.json": "object instance requests are not modelled here (shape checked)",
    # Profiles are not modelled here, but flow_metadata is a Flow's technical part:
    # test_profile_flow_metadata_parses_as_the_technical_part_of_a_flow.
    "profile-get-200-image.json": "profiles are not modelled here (flow_metadata checked)",
    "profile-get-200-video-h264-mxf.json": "profiles are not modelled here (flow_metadata checked)",
    "profile-get-200-video-h264.json": "profiles are not modelled here (flow_metadata checked)",
    "profile-post-201.json": "profiles are not modelled here (flow_metadata checked)",
    "profile-put.json": "profiles are not modelled here (flow_metadata checked)",
    "profiles-get-200.json": "profiles are not modelled here (flow_metadata checked)",
}


@requires_spec
def test_every_official_example_is_accounted_for():
    on_disk = {p.name for p in EXAMPLES.glob("*.json")}
    mapped = {case[0] for case in CASES}
    assert not mapped & set(OUT_OF_SCOPE), "an example is both mapped and out of scope"
    assert sorted(on_disk - mapped - set(OUT_OF_SCOPE)) == [], "unclassified examples"
    assert sorted((mapped | set(OUT_OF_SCOPE)) - on_disk) == [], "table names missing examples"


def _case_id(case: tuple) -> str:
    return case[0].removesuffix(".json")


@requires_spec
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_official_example_parses_and_dumps_to_a_schema_valid_equivalent_body(case):
    example, adapter, schema, per_item, expected_type = case
    original = load_example(example)

    parsed = adapter.validate_python(original)
    if expected_type is not None:
        assert type(parsed) is expected_type
    # The JSON path (what FastAPI uses) gives the same value as the Python path.
    assert adapter.validate_json((EXAMPLES / example).read_bytes()) == parsed

    dumped = adapter.dump_python(parsed, mode="json", exclude_none=True)
    for instance in dumped if per_item else [dumped]:
        assert_valid(instance, schema)
    # Nothing was dropped, added or changed beyond the documented normalisations.
    assert _canonical(dumped) == _canonical(original)
    # And the dump reads back to the same value.
    assert adapter.validate_python(dumped) == parsed


@requires_spec
def test_naive_datetime_in_official_example_is_read_as_utc():
    # flow-get-200-data-ttml.json has "created": "2023-12-14T16:34:58.131620", no offset,
    # which RFC 3339 (format: date-time) does not allow. The model reads it as UTC.
    flow = FlowAdapter.validate_python(load_example("flow-get-200-data-ttml.json"))
    assert flow.created == datetime(2023, 12, 14, 16, 34, 58, 131620, tzinfo=timezone.utc)
    assert flow.model_dump(mode="json")["created"] == "2023-12-14T16:34:58.131620Z"


@requires_spec
def test_profile_flow_put_is_not_a_full_flow():
    # flow-put-profile.json takes its format and technical fields from a Profile, so it cannot
    # be a `Flow` (which is chosen by format); it is a ProfileFlowPut via FlowPutAdapter.
    body = load_example("flow-put-profile.json")
    with pytest.raises(ValidationError):
        FlowAdapter.validate_python(body)
    assert not is_valid(body, "flow-get.json")
    put = FlowPutAdapter.validate_python(body)
    assert put.profile_id == UUID("329b98d6-adeb-418c-8eaf-eca14edc1706")


@requires_spec
@pytest.mark.parametrize(
    "example",
    [name for name in OUT_OF_SCOPE if name.startswith("profile")],
)
def test_profile_flow_metadata_parses_as_the_technical_part_of_a_flow(example):
    # A Profile's flow_metadata is one of the format schemas without the common Flow fields.
    # Adding an id and source_id must give a Flow of that format that flow-get.json accepts.
    data = load_example(example)
    for profile in data if isinstance(data, list) else [data]:
        body = {
            "id": "6101df05-06bb-41b8-8af4-cf7cd33df209",
            "source_id": "41d7f7eb-c48d-4513-9b37-17b418d26d7f",
            **profile["flow_metadata"],
        }
        flow = FlowAdapter.validate_python(body)
        assert flow.format == profile["flow_metadata"]["format"]
        dumped = FlowAdapter.dump_python(flow, mode="json", exclude_none=True)
        assert_valid(dumped, "flow-get.json")
        assert _canonical(dumped) == _canonical(body)


@requires_spec
@pytest.mark.parametrize("example", ["objects-get-200.json", "objects-get-200-init.json"])
def test_object_examples_get_urls_are_get_urls(example):
    obj = load_example(example)
    url_lists = [obj["get_urls"]]
    if "init_object" in obj:
        url_lists.append(obj["init_object"]["get_urls"])
    for urls in url_lists:
        parsed = TypeAdapter(list[GetUrl]).validate_python(urls)
        assert TypeAdapter(list[GetUrl]).dump_python(parsed, mode="json", exclude_none=True) == urls
    # Substituting our dumps back into the Object keeps it valid against object.json.
    obj["get_urls"] = [
        GetUrl.model_validate(u).model_dump(mode="json", exclude_none=True) for u in obj["get_urls"]
    ]
    assert_valid(obj, "object.json")


@requires_spec
def test_uncontrolled_instance_example_is_an_uncontrolled_get_url():
    body = load_example("objects-instances-uncontrolled-post.json")
    url = UncontrolledGetUrl.model_validate(body)
    dumped = url.model_dump(mode="json", exclude_none=True)
    assert dumped == body
    assert_valid(dumped, "objects-instances-post.json")


# --------------------------------------------------------------------------------------------
# Flows: rejected bodies
# --------------------------------------------------------------------------------------------


def _video_flow() -> dict[str, Any]:
    return {
        "id": "4f79cfd1-c057-47f4-8e4d-1b126ca7bf34",
        "source_id": "2aa143ac-0ab7-4d75-bc32-5c00c13d186f",
        "format": "urn:x-nmos:format:video",
        "codec": "video/h264",
        "container": "video/mp2t",
        "essence_parameters": {
            "frame_width": 1920,
            "frame_height": 1080,
            "frame_rate": {"numerator": 25, "denominator": 1},
        },
    }


def _image_flow() -> dict[str, Any]:
    return {
        "id": "4f79cfd1-c057-47f4-8e4d-1b126ca7bf33",
        "source_id": "2aa143ac-0ab7-4d75-bc32-5c00c13d186e",
        "format": "urn:x-tam:format:image",
        "codec": "image/jpeg",
        "container": "image/jpeg",
        "essence_parameters": {"frame_width": 1280, "frame_height": 720},
    }


def _audio_flow() -> dict[str, Any]:
    return {
        "id": "6101df05-06bb-41b8-8af4-cf7cd33df209",
        "source_id": "41d7f7eb-c48d-4513-9b37-17b418d26d7f",
        "format": "urn:x-nmos:format:audio",
        "codec": "audio/aac",
        "essence_parameters": {"sample_rate": 48000, "channels": 2},
    }


def _edit(base: Callable[[], dict], change: Callable[[dict], None]) -> dict:
    body = copy.deepcopy(base())
    change(body)
    return body


def _drop_frame_rate(b: dict) -> None:
    del b["essence_parameters"]["frame_rate"]


INVALID_FLOWS: dict[str, dict] = {
    "video_without_frame_rate_and_without_vfr": _edit(_video_flow, _drop_frame_rate),
    "video_with_vfr_false_and_no_frame_rate": _edit(
        _video_flow,
        lambda b: (_drop_frame_rate(b), b["essence_parameters"].update(vfr=False)),
    ),
    "video_with_vfr_true_and_a_frame_rate": _edit(
        _video_flow, lambda b: b["essence_parameters"].update(vfr=True)
    ),
    "video_with_unknown_essence_key": _edit(
        _video_flow, lambda b: b["essence_parameters"].update(frame_rat={"numerator": 25})
    ),
    "audio_with_unknown_essence_key": _edit(
        _audio_flow, lambda b: b["essence_parameters"].update(sample_format="s16")
    ),
    "image_with_init_segments": _edit(
        _image_flow, lambda b: b["essence_parameters"].update(init_segments=True)
    ),
    "id_not_a_uuid": _edit(_video_flow, lambda b: b.update(id="flow-1")),
    "id_in_upper_case": _edit(
        _video_flow, lambda b: b.update(id="4F79CFD1-C057-47F4-8E4D-1B126CA7BF34")
    ),
    "source_id_of_uuid_version_7": _edit(
        _video_flow, lambda b: b.update(source_id="01890a5d-ac96-774b-bcce-b302099a8057")
    ),
    "collected_by_with_a_bad_uuid": _edit(_video_flow, lambda b: b.update(collected_by=["x"])),
    "container_without_a_subtype": _edit(_video_flow, lambda b: b.update(container="mp2t")),
    "container_with_whitespace": _edit(_video_flow, lambda b: b.update(container="video/ mp2t")),
    "container_with_two_slashes": _edit(
        _video_flow, lambda b: b.update(container="video/mp2t/x")
    ),
    "codec_not_a_mime_type": _edit(_video_flow, lambda b: b.update(codec="h264")),
    "video_without_codec": _edit(_video_flow, lambda b: b.pop("codec")),
    "video_without_essence_parameters": _edit(_video_flow, lambda b: b.pop("essence_parameters")),
    "video_without_frame_width": _edit(
        _video_flow, lambda b: b["essence_parameters"].pop("frame_width")
    ),
    "frame_width_zero": _edit(
        _video_flow, lambda b: b["essence_parameters"].update(frame_width=0)
    ),
    "frame_width_as_a_string": _edit(
        _video_flow, lambda b: b["essence_parameters"].update(frame_width="1920")
    ),
    "unknown_colorspace": _edit(
        _video_flow, lambda b: b["essence_parameters"].update(colorspace="sRGB")
    ),
    "unknown_format": _edit(_video_flow, lambda b: b.update(format="urn:x-nmos:format:mux")),
    "image_with_the_nmos_urn": _edit(
        _image_flow, lambda b: b.update(format="urn:x-nmos:format:image")
    ),
    "missing_format": _edit(_video_flow, lambda b: b.pop("format")),
    "missing_source_id": _edit(_video_flow, lambda b: b.pop("source_id")),
    "negative_generation": _edit(_video_flow, lambda b: b.update(generation=-1)),
    "unknown_status": _edit(_video_flow, lambda b: b.update(status="live")),
    "read_only_as_a_string": _edit(_video_flow, lambda b: b.update(read_only="true")),
    "tag_value_a_number": _edit(_video_flow, lambda b: b.update(tags={"n": 1})),
    "timerange_not_a_timerange": _edit(_video_flow, lambda b: b.update(timerange="0-10")),
    "segment_duration_zero": _edit(
        _video_flow, lambda b: b.update(segment_duration={"numerator": 0})
    ),
    "multi_with_unknown_essence_key": {
        "id": "e85efab4-993b-4ad6-9af3-4cd8d0d38860",
        "source_id": "a77d0061-0878-4e8a-a114-772d03f952c1",
        "format": "urn:x-nmos:format:multi",
        "essence_parameters": {"init_segments": True, "tracks": 3},
    },
    "mxf_package_uid_malformed": _edit(
        _video_flow,
        lambda b: b.update(container_mapping={"mxf_container": {"package_uid": "urn:uuid:x"}}),
    ),
}


@pytest.mark.parametrize("body", INVALID_FLOWS.values(), ids=INVALID_FLOWS.keys())
def test_invalid_flow_is_rejected_by_the_model(body):
    with pytest.raises(ValidationError):
        FlowAdapter.validate_python(body)
    with pytest.raises(ValidationError):
        FlowPutAdapter.validate_python(body)


@requires_spec
@pytest.mark.parametrize("body", INVALID_FLOWS.values(), ids=INVALID_FLOWS.keys())
def test_invalid_flow_is_rejected_by_the_official_schema_too(body):
    assert not is_valid(body, "flow-get.json")
    assert not is_valid(body, "flow-put.json")


# --------------------------------------------------------------------------------------------
# Flows: accepted edge cases and behaviour
# --------------------------------------------------------------------------------------------

VALID_FLOWS: dict[str, dict] = {
    "video_with_vfr_false_and_a_frame_rate": _edit(
        _video_flow, lambda b: b["essence_parameters"].update(vfr=False)
    ),
    "video_with_vfr_true_and_no_frame_rate": _edit(
        _video_flow,
        lambda b: (_drop_frame_rate(b), b["essence_parameters"].update(vfr=True)),
    ),
    "video_frame_rate_without_denominator": _edit(
        _video_flow,
        lambda b: b["essence_parameters"].update(frame_rate={"numerator": 25}),
    ),
    "video_with_unknown_top_level_key": _edit(
        _video_flow, lambda b: b.update(x_vendor={"kept": [1, 2]})
    ),
    "flow_with_list_tag_and_every_status_field": _edit(
        _video_flow,
        lambda b: b.update(
            tags={"auth_classes": ["news", "sport"], "input_quality": "web"},
            status="ingesting",
            read_only=False,
            max_bit_rate=8000,
            generation=0,
            metadata_version="v1",
            timerange="[0:0_10:0)",
            segment_duration={"numerator": 6},
            created="2024-01-01T00:00:00Z",
        ),
    ),
    "multi_with_only_the_required_fields": {
        "id": "e85efab4-993b-4ad6-9af3-4cd8d0d38860",
        "source_id": "a77d0061-0878-4e8a-a114-772d03f952c1",
        "format": "urn:x-nmos:format:multi",
    },
    "data_with_empty_essence_parameters": {
        "id": "e85efab4-993b-4ad6-9af3-4cd8d0d38861",
        "source_id": "a77d0061-0878-4e8a-a114-772d03f952c1",
        "format": "urn:x-nmos:format:data",
        "codec": "application/json",
        "essence_parameters": {},
    },
    "audio_with_a_container_mapping": _edit(
        _audio_flow,
        lambda b: b.update(
            container_mapping={
                "track_index": 1,
                "audio_track": {"channel_range": "0_1"},
                "mxf_container": {
                    "package_uid": "urn:uuid:0b1a3c36-3d6c-4f3d-9e34-8d2f5d6f0a11",
                    "track_id": 3,
                },
            }
        ),
    ),
}


@pytest.mark.parametrize("body", VALID_FLOWS.values(), ids=VALID_FLOWS.keys())
def test_valid_flow_edge_case_is_accepted_and_round_trips(body):
    flow = FlowAdapter.validate_python(body)
    dumped = FlowAdapter.dump_python(flow, mode="json", exclude_none=True)
    assert _canonical(dumped) == _canonical(body)


@requires_spec
@pytest.mark.parametrize("body", VALID_FLOWS.values(), ids=VALID_FLOWS.keys())
def test_valid_flow_edge_case_is_accepted_by_the_official_schema(body):
    dumped = FlowAdapter.dump_python(FlowAdapter.validate_python(body), mode="json", exclude_none=True)
    assert_valid(body, "flow-get.json")
    assert_valid(dumped, "flow-get.json")
    assert_valid(dumped, "flow-put.json")


def test_flow_is_chosen_by_format():
    assert isinstance(FlowAdapter.validate_python(_video_flow()), VideoFlow)
    assert isinstance(FlowAdapter.validate_python(_audio_flow()), AudioFlow)
    assert isinstance(FlowAdapter.validate_python(_image_flow()), ImageFlow)


def test_flow_fields_are_domain_values():
    body = _edit(
        _video_flow,
        lambda b: b.update(timerange="[0:0_10:0)", created="2024-01-01T00:00:00+01:00"),
    )
    flow = FlowAdapter.validate_python(body)
    assert flow.id == UUID(body["id"])
    assert flow.timerange == TimeRange.parse("[0:0_10:0)")
    assert flow.created == datetime(2023, 12, 31, 23, 0, tzinfo=timezone.utc)
    assert (flow.essence_parameters.frame_rate.numerator, flow.essence_parameters.frame_rate.denominator) == (25, 1)
    assert flow.format == "urn:x-nmos:format:video"


def test_flow_dump_without_none_has_only_what_was_set():
    flow = VideoFlow(
        id=UUID("4f79cfd1-c057-47f4-8e4d-1b126ca7bf34"),
        source_id=UUID("2aa143ac-0ab7-4d75-bc32-5c00c13d186f"),
        codec="video/h264",
        essence_parameters={"frame_width": 1920, "frame_height": 1080, "vfr": True},
    )
    assert flow.model_dump(mode="json", exclude_none=True) == {
        "id": "4f79cfd1-c057-47f4-8e4d-1b126ca7bf34",
        "source_id": "2aa143ac-0ab7-4d75-bc32-5c00c13d186f",
        "format": "urn:x-nmos:format:video",
        "codec": "video/h264",
        "essence_parameters": {"frame_width": 1920, "frame_height": 1080, "vfr": True},
    }


def test_unknown_top_level_flow_key_is_kept():
    flow = FlowAdapter.validate_python(_edit(_video_flow, lambda b: b.update(x_vendor="a")))
    assert flow.model_extra == {"x_vendor": "a"}
    assert flow.model_dump(mode="json", exclude_none=True)["x_vendor"] == "a"


def test_server_computed_timerange_is_dumped_canonically():
    flow = FlowAdapter.validate_python(_edit(_video_flow, lambda b: b.update(timerange="[0:0_10:0]")))
    assert flow.model_dump(mode="json")["timerange"] == "[0:0_10:0]"
    flow = FlowAdapter.validate_python(_edit(_video_flow, lambda b: b.update(timerange="[5:0]")))
    assert flow.model_dump(mode="json")["timerange"] == "[5:0]"


# --------------------------------------------------------------------------------------------
# Flow PUT: the Profile branch
# --------------------------------------------------------------------------------------------


def _profile_put() -> dict[str, Any]:
    return {
        "id": "6101df05-06bb-41b8-8af4-cf7cd33df209",
        "source_id": "41d7f7eb-c48d-4513-9b37-17b418d26d7f",
        "label": "capture_1",
        "profile_id": "329b98d6-adeb-418c-8eaf-eca14edc1706",
    }


def test_profile_put_is_read_as_profile_flow_put():
    put = FlowPutAdapter.validate_python(_profile_put())
    assert isinstance(put, ProfileFlowPut)
    assert put.model_dump(mode="json", exclude_none=True) == _profile_put()


@pytest.mark.parametrize(
    "field, value",
    [
        ("format", "urn:x-nmos:format:audio"),
        ("codec", "audio/aac"),
        ("container", "video/mp2t"),
        ("avg_bit_rate", 128),
        ("segment_duration", {"numerator": 1}),
        ("container_mapping", {"track_index": 0}),
        ("essence_parameters", {"sample_rate": 48000, "channels": 2}),
    ],
)
def test_profile_put_with_a_technical_field_is_rejected(field, value):
    # The PUT description says a profile_id plus any Profile-supplied metadata is a 400.
    with pytest.raises(ValidationError, match="must not also set"):
        FlowPutAdapter.validate_python({**_profile_put(), field: value})


@requires_spec
def test_official_schema_also_rejects_profile_id_with_a_full_flow():
    # With format present both oneOf branches of flow-put.json match, so it is invalid. (For a
    # lone technical field such as codec the schema alone would pass it; that 400 is prose-only.)
    body = {**_audio_flow(), "profile_id": "329b98d6-adeb-418c-8eaf-eca14edc1706"}
    assert not is_valid(body, "flow-put.json")
    with pytest.raises(ValidationError):
        FlowPutAdapter.validate_python(body)
    # As read back (flow-get.json) a profile-linked Flow does carry profile_id and format.
    assert_valid(body, "flow-get.json")
    assert FlowAdapter.validate_python(body).profile_id == UUID(body["profile_id"])


@requires_spec
def test_empty_profile_id_breaks_the_profile_link_in_a_put():
    # The PUT description: send "profile_id": "" with full technical metadata to unlink.
    body = {**_audio_flow(), "profile_id": ""}
    put = FlowPutAdapter.validate_python(body)
    assert isinstance(put, AudioFlow) and put.profile_id == ""
    assert_valid(put.model_dump(mode="json", exclude_none=True), "flow-put.json")


@requires_spec
def test_put_with_neither_profile_nor_format_is_rejected():
    body = {k: v for k, v in _audio_flow().items() if k not in ("format",)}
    assert not is_valid(body, "flow-put.json")
    with pytest.raises(ValidationError):
        FlowPutAdapter.validate_python(body)


# --------------------------------------------------------------------------------------------
# Sources and the service
# --------------------------------------------------------------------------------------------


def test_source_rejects_an_unknown_format():
    with pytest.raises(ValidationError):
        Source.model_validate({"id": "2aa143ac-0ab7-4d75-bc32-5c00c13d186f", "format": "video"})


def _service(**changes: Any) -> dict[str, Any]:
    return {
        "type": "urn:x-tams:service.example",
        "api_version": "8.2",
        "min_object_timeout": "600:0",
        **changes,
    }


def test_service_timeouts_are_nanoseconds_and_dump_as_timestamps():
    service = Service.model_validate(_service(min_presigned_url_timeout="300:500000000"))
    assert service.min_object_timeout == 600 * 10**9
    assert service.min_presigned_url_timeout == 300_500_000_000
    dumped = service.model_dump(mode="json", exclude_none=True)
    assert dumped["min_presigned_url_timeout"] == "300:500000000"


@pytest.mark.parametrize(
    "changes",
    [
        {"min_object_timeout": "299:999999999"},  # MUST be 300:0 or greater
        {"min_presigned_url_timeout": "29:0"},  # MUST be 30:0 or greater
        {"api_version": "v8.2"},
        {"api_version": "8"},
        {"type": "urn:x-nmos:service"},  # must start with urn:x-tams:service
        {"min_object_timeout": "600"},
    ],
    ids=[
        "object_timeout_short",
        "presigned_timeout_short",
        "version_prefixed",
        "version_major_only",
        "wrong_type_urn",
        "timeout_not_a_timestamp",
    ],
)
def test_service_rejects_values_the_spec_forbids(changes):
    with pytest.raises(ValidationError):
        Service.model_validate(_service(**changes))


@requires_spec
def test_service_example_breaks_the_presigned_timeout_ordering_rule_and_is_still_accepted():
    # service.json says min_presigned_url_timeout MUST be <= min_object_timeout, yet the
    # official example has 610:0 > 600:0. The model leaves that cross-field rule to the
    # service configuration so the example parses; this test pins the inconsistency.
    service = Service.model_validate(load_example("service-get-200.json"))
    assert service.min_presigned_url_timeout > service.min_object_timeout


@requires_spec
def test_service_event_stream_mechanism_keeps_its_config():
    body = _service(event_stream_mechanisms=[{"name": "webhooks", "config": {"a": [1]}}])
    dumped = Service.model_validate(body).model_dump(mode="json", exclude_none=True)
    assert dumped == body
    assert_valid(dumped, "service.json")


# --------------------------------------------------------------------------------------------
# Storage backends, get_urls and segments
# --------------------------------------------------------------------------------------------


def test_storage_backend_requires_the_listing_fields():
    complete = {
        "id": "60af2ab4-e8a5-4c65-a09b-d35983680315",
        "store_type": "http_object_store",
        "provider": "example",
        "store_product": "example-product",
    }
    assert StorageBackend.model_validate(complete).default_storage is None
    for missing in complete:
        with pytest.raises(ValidationError):
            StorageBackend.model_validate({k: v for k, v in complete.items() if k != missing})
    with pytest.raises(ValidationError):
        StorageBackend.model_validate({**complete, "store_type": "s3"})


def _verbose_get_url() -> dict[str, Any]:
    return {
        "url": "https://store.example.com/bucket/obj",
        "presigned": True,
        "label": "example-store-name",
        "controlled": True,
        "storage_id": "60af2ab4-e8a5-4c65-a09b-d35983680315",
        "store_type": "http_object_store",
        "provider": "example-cloud-provider",
        "region": "eu-west-1",
        "availability_zone": "a",
        "store_product": "example-storage-product",
        "tags": {"auth_classes": ["news"]},
    }


def _segment(**changes: Any) -> dict[str, Any]:
    return {"object_id": "846023d3-612d-5014-bc47-88f6eb2d04bb", "timerange": "[0:0_10:0)", **changes}


@requires_spec
def test_verbose_get_url_round_trips_inside_a_segment():
    body = _segment(
        get_urls=[_verbose_get_url()],
        init_object={"object_id": "9ef06e23", "get_urls": [_verbose_get_url()]},
        ts_offset="-100:0",
        last_duration="0:40000000",
        object_timerange="[100:0_110:0)",
        key_frame_count=1,
        sample_offset=0,
        sample_count=250,
    )
    segment = FlowSegment.model_validate(body)
    assert segment.ts_offset == -100 * 10**9
    assert segment.get_urls[0].storage_id == UUID("60af2ab4-e8a5-4c65-a09b-d35983680315")
    dumped = segment.model_dump(mode="json", exclude_none=True)
    assert dumped == body
    assert_valid(dumped, "flow-segment.json")


INVALID_SEGMENTS: dict[str, dict] = {
    # get_urls entries are closed (unevaluatedProperties: false); default_storage and id are
    # backend listing fields, not part of storage-backend.json.
    "get_url_with_default_storage": _segment(get_urls=[{"url": "u", "default_storage": True}]),
    "get_url_with_backend_id": _segment(
        get_urls=[{"url": "u", "id": "60af2ab4-e8a5-4c65-a09b-d35983680315"}]
    ),
    "get_url_without_url": _segment(get_urls=[{"label": "a"}]),
    "get_url_with_bad_storage_id": _segment(get_urls=[{"url": "u", "storage_id": "x"}]),
    "init_object_with_unknown_key": _segment(init_object={"object_id": "i", "id": "i"}),
    "init_object_without_object_id": _segment(init_object={"get_urls": []}),
    "missing_timerange": {"object_id": "o"},
    "bad_timerange": _segment(timerange="[0:0-10:0)"),
    "bad_ts_offset": _segment(ts_offset="1.5"),
    "key_frame_count_as_a_string": _segment(key_frame_count="1"),
}


@pytest.mark.parametrize("body", INVALID_SEGMENTS.values(), ids=INVALID_SEGMENTS.keys())
def test_invalid_segment_is_rejected_by_the_model(body):
    with pytest.raises(ValidationError):
        FlowSegment.model_validate(body)


@requires_spec
@pytest.mark.parametrize("body", INVALID_SEGMENTS.values(), ids=INVALID_SEGMENTS.keys())
def test_invalid_segment_is_rejected_by_the_official_schema_too(body):
    assert not is_valid(body, "flow-segment.json")


def test_negative_last_duration_is_rejected():
    # Stricter than the schema: timestamp.json allows a sign, but the field description says
    # last_duration "cannot be negative".
    with pytest.raises(ValidationError, match="negative"):
        FlowSegment.model_validate(_segment(last_duration="-0:1"))
    with pytest.raises(ValidationError, match="negative"):
        FlowSegmentPost.model_validate(_segment(last_duration="-1:0"))


def test_unknown_segment_key_is_kept():
    segment = FlowSegment.model_validate(_segment(x_note="kept"))
    assert segment.model_dump(mode="json", exclude_none=True)["x_note"] == "kept"


def test_init_object_and_get_url_are_closed_models():
    with pytest.raises(ValidationError):
        InitObject.model_validate({"object_id": "i", "timerange": "[0:0]"})
    with pytest.raises(ValidationError):
        GetUrl.model_validate({"url": "u", "method": "GET"})


@requires_spec
def test_segment_post_body_is_one_segment_or_an_array():
    one = FlowSegmentPostAdapter.validate_python(_segment())
    many = FlowSegmentPostAdapter.validate_python([_segment(), _segment(timerange="[10:0_20:0)")])
    assert isinstance(one, FlowSegmentPost)
    assert [type(s) for s in many] == [FlowSegmentPost, FlowSegmentPost]
    full = _segment(
        init_object_id="9ef06e23-b882-4a93-b005-480de42ef4e9",
        ts_offset="0:0",
        object_timerange="[0:0_10:0)",
        last_duration="0:20000000",
        sample_offset=0,
        sample_count=500,
        key_frame_count=1,
        get_urls=[{"url": "https://b.example.com/o", "label": "pipeline-b"}],
    )
    dumped = FlowSegmentPost.model_validate(full).model_dump(mode="json", exclude_none=True)
    assert dumped == full
    assert_valid(dumped, "flow-segment-post.json")


@requires_spec
def test_segment_post_get_url_needs_a_label():
    body = _segment(get_urls=[{"url": "https://b.example.com/o"}])
    assert not is_valid(body, "flow-segment-post.json")
    with pytest.raises(ValidationError):
        FlowSegmentPost.model_validate(body)


@requires_spec
def test_bulk_failure_error_time_is_rfc3339_after_dump():
    failure = BulkFailure(
        failed_segments=[
            {
                "object_id": "o",
                "timerange": "[0:0_1:0)",
                "error": Error(type="Overlap", summary="overlaps [0:0_5:0)", time=datetime(2025, 1, 1)),
            }
        ]
    )
    dumped = failure.model_dump(mode="json", exclude_none=True)
    assert dumped["failed_segments"][0]["error"]["time"] == "2025-01-01T00:00:00Z"
    assert_valid(dumped, "flow-segment-bulk-failure.json")


def test_error_requires_type_summary_and_time():
    with pytest.raises(ValidationError):
        Error.model_validate({"type": "T", "summary": "s"})


# --------------------------------------------------------------------------------------------
# Storage allocation
# --------------------------------------------------------------------------------------------


@requires_spec
def test_storage_post_with_limit_and_object_ids_is_rejected():
    body = {"limit": 2, "object_ids": ["a", "b"]}
    assert not is_valid(body, "flow-storage-post.json")
    with pytest.raises(ValidationError, match="mutually exclusive"):
        FlowStoragePost.model_validate(body)


@requires_spec
@pytest.mark.parametrize("content_type", ["foo/bar", "video", "video/mp2t; codecs=x"])
def test_storage_post_content_type_must_be_a_mime_type(content_type):
    body = {"limit": 1, "content_type": content_type}
    assert not is_valid(body, "flow-storage-post.json")
    with pytest.raises(ValidationError):
        FlowStoragePost.model_validate(body)


@requires_spec
def test_storage_post_for_init_segments_round_trips():
    body = {
        "limit": 1,
        "storage_id": "60af2ab4-e8a5-4c65-a09b-d35983680315",
        "content_type": "video/mp4",
        "presigned": False,
    }
    dumped = FlowStoragePost.model_validate(body).model_dump(mode="json", exclude_none=True)
    assert dumped == body
    assert_valid(dumped, "flow-storage-post.json")
    assert FlowStoragePost().model_dump(mode="json", exclude_none=True) == {}


def test_put_url_content_type_uses_the_hyphenated_key():
    by_name = HttpRequest(url="https://s.example.com/o", content_type="video/mp2t")
    by_alias = HttpRequest.model_validate({"url": "https://s.example.com/o", "content-type": "video/mp2t"})
    assert by_name == by_alias
    assert by_alias.content_type == "video/mp2t"
    assert by_name.model_dump(mode="json", exclude_none=True) == {
        "url": "https://s.example.com/o",
        "content-type": "video/mp2t",
    }


@requires_spec
def test_storage_response_built_in_python_is_schema_valid():
    response = FlowStorage(
        media_objects=[
            {
                "object_id": "846023d3-612d-5014-bc47-88f6eb2d04bb",
                "put_url": HttpRequest(
                    url="https://s.example.com/o?sig=1",
                    content_type="video/mp2t",
                    headers={"x-amz-checksum-algorithm": "SHA256"},
                ),
                "presigned": True,
            }
        ]
    )
    dumped = response.model_dump(mode="json", exclude_none=True)
    assert dumped["media_objects"][0]["put_url"]["content-type"] == "video/mp2t"
    assert_valid(dumped, "flow-storage.json")


@requires_spec
def test_storage_response_is_closed_but_put_url_keeps_extras():
    assert not is_valid({"media_objects": [], "next": "x"}, "flow-storage.json")
    with pytest.raises(ValidationError):
        FlowStorage.model_validate({"media_objects": [], "next": "x"})
    put_url = {"url": "u", "content-type": "video/mp2t", "method": "PUT"}
    assert HttpRequest.model_validate(put_url).model_dump(mode="json", exclude_none=True) == put_url
