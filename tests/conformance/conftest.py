"""Conformance suite: every response is checked against the official TAMS 8.2 OpenAPI document.

The `tams` fixture is an `httpx.AsyncClient` on the session's stack (the `stack` fixture of
`tests/conftest.py`: one broker, one agent worker, one API). Its response event hook runs
`ResponseChecker` on every response, so a test only states what its operation should do; a body
the spec forbids fails the test even when the test never looks at that body.

For each response the checker:

1. resolves the request path to its OpenAPI path template (`/flows/3fa8…/tags/genre` is
   `/flows/{flowId}/tags/{name}`; an object id may contain `/`). Paths the document does not
   define (`/media/…` upload and download URLs, `/health`, `/metrics`) are not checked;
2. requires the status code to be documented for (method, template). An undocumented status is
   allowed only for 400, 401, 403, 404 and 413, and only with this service's error body. 5xx
   always fails;
3. validates the JSON body against `responses[status].content["application/json"].schema`, with
   `$ref`s resolved to `api/schemas/*.json` through a `referencing` registry (Draft 2020-12, with
   `date-time` checked). Every 4xx/5xx body must be exactly `{type, summary, time}` and valid
   against `schemas/error.json`. A 204 must have no body;
4. checks the headers the response documents: `X-Paging-Limit`, `-Count`, `-Reverse-Order` and
   (segments) `-Timerange` must be present and of their schema type. `X-Paging-Count` must equal
   the number of items returned and `X-Paging-Reverse-Order` the `reverse_order` requested
   (except on `/flow-delete-requests`, which the spec leaves unordered).
   `Link` and `X-Paging-NextKey` come together: `Link` is `<url>; rel="next"`, on the same path,
   keeps every query parameter of the request and sets `page` to the NextKey. A documented
   `Location` (the 202 of deletions) is required and names the deletion request in the body;
5. for a HEAD: requires an empty body. For a GET of a path that also has a HEAD operation, it
   also sends the HEAD (with a plain client) and requires the same status and headers (all but
   `date`, `content-length` and `server`), so HEAD is checked wherever GET is exercised.

A violation raises `SpecViolation` (an `AssertionError`) out of the request call that received
the response, naming the operation, the status and what was wrong.

Every checked (method, template, status) is recorded in `SEEN`; the terminal summary lists how
many of the 85 operations the run exercised. `test_coverage.py` checks statically that every
documented operation and status has a test named `test_<method>_<path words>_<status>_…`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.conftest import SPEC
from tests.stack import Stack
from tests.test_resources import FORMATS

OPENAPI: dict[str, Any] = yaml.safe_load((SPEC / "api" / "TimeAddressableMediaStore.yaml").read_text())
SCHEMAS = SPEC / "api" / "schemas"
METHODS = ("get", "head", "put", "post", "delete")
REGISTRY: Registry = Registry().with_resources(
    (f"schemas/{path.name}", DRAFT202012.create_resource(json.loads(path.read_text())))
    for path in SCHEMAS.glob("*.json"))
ERROR_STATUSES_ALLOWED_UNDOCUMENTED = {400, 401, 403, 404, 413}
ERROR_KEYS = {"type", "summary", "time"}
HEAD_IGNORED_HEADERS = {"date", "content-length", "server"}
REQUIRED_PAGING_HEADERS = {"X-Paging-Limit", "X-Paging-Count", "X-Paging-Reverse-Order", "X-Paging-Timerange"}

# "will not necessarily list all requests, nor return a consistent set in any particular order": the header
# reports whether the order was reversed, which it need not be.
UNORDERED_LISTINGS = {"/flow-delete-requests"}

SEEN: set[tuple[str, str, int]] = set()


class SpecViolation(AssertionError):
    """A response the official OpenAPI document does not allow."""


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join(
        (".+" if part == "{objectId}" else "[^/]+") if part.startswith("{") else re.escape(part)
        for part in parts) + "$")


# Most specific first: fewer parameters, then longer literal text (/objects/{id}/instances before /objects/{id}).
TEMPLATES: list[tuple[str, re.Pattern[str]]] = sorted(
    ((t, _template_pattern(t)) for t in OPENAPI["paths"]),
    key=lambda item: (item[0].count("{"), -len(re.sub(r"\{[^}]+\}", "", item[0]))))


def operations() -> list[tuple[str, str]]:
    """Every (METHOD, path template) of the official document."""
    return [(method.upper(), path) for path, item in OPENAPI["paths"].items() for method in item if method in METHODS]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow local `#/components/...` references of the OpenAPI document."""
    while "$ref" in node and node["$ref"].startswith("#/"):
        target: Any = OPENAPI
        for key in node["$ref"][2:].split("/"):
            target = target[key]
        node = target
    return node


def documented_responses(method: str, template: str) -> dict[str, dict[str, Any]]:
    operation = OPENAPI["paths"][template].get(method.lower())
    if operation is None:
        return {}
    return {str(status): resolve(response) for status, response in operation["responses"].items()}


def template_for(path: str) -> str | None:
    for template, pattern in TEMPLATES:
        if pattern.match(path):
            return template
    return None


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, registry=REGISTRY, format_checker=FORMATS)


def schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    errors = sorted(validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message[:300]}" for e in errors[:8]]


def _header_value_ok(value: str, schema: dict[str, Any]) -> bool:
    if schema.get("type") == "integer":
        return re.fullmatch(r"\d+", value) is not None
    if schema.get("type") == "boolean":
        return value in ("true", "false")
    if "$ref" in schema:
        return not schema_errors(value, schema)
    return True


class ResponseChecker:
    """The response hook of the `tams` client (see the module docstring)."""

    def __init__(self, plain: httpx.AsyncClient) -> None:
        self.plain = plain  # sends the HEAD mirrors, unchecked by the hook

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        request = response.request
        path = request.url.raw_path.decode().split("?", 1)[0]
        template = template_for(path)
        if template is None:
            return
        check(request.method, template, response)
        if request.method == "GET" and "head" in OPENAPI["paths"][template]:
            head = await self.plain.head(request.url, headers={k: v for k, v in request.headers.items()
                                                               if k.lower() not in ("host", "content-length")})
            check("HEAD", template, head)
            compare_head(template, response, head)


def fail(method: str, template: str, response: httpx.Response, problem: str) -> None:
    raise SpecViolation(f"{method} {template} -> {response.status_code} ({response.request.url}): {problem}\n"
                        f"body: {response.text[:800]}")


def check(method: str, template: str, response: httpx.Response) -> None:
    """Raise SpecViolation when `response` is not what the document allows for (method, template)."""
    status = response.status_code
    responses = documented_responses(method, template)
    if not responses:
        fail(method, template, response, f"{method} is not an operation of {template} in the official document")
    documented = responses.get(str(status))
    body = None
    if method == "HEAD":
        if response.content:
            fail(method, template, response, "a HEAD response must have no body")
    elif response.content:
        try:
            body = response.json()
        except ValueError:
            fail(method, template, response, "the body is not JSON")
    if status >= 400 and method != "HEAD":
        if not isinstance(body, dict) or set(body) != ERROR_KEYS:
            fail(method, template, response, f"an error body must be exactly {sorted(ERROR_KEYS)}")
        problems = schema_errors(body, {"$ref": "schemas/error.json"})
        if problems:
            fail(method, template, response, "error body invalid against error.json: " + "; ".join(problems))
    if documented is None:
        if status >= 500 or status not in ERROR_STATUSES_ALLOWED_UNDOCUMENTED:
            fail(method, template, response, f"status {status} is not documented (documented: {sorted(responses)})")
        SEEN.add((method, template, status))
        return
    SEEN.add((method, template, status))
    if status == 204 and response.content:
        fail(method, template, response, "a 204 must have no body")
    schema = documented.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None and method != "HEAD":
        if not response.content:
            fail(method, template, response, "the documented JSON body is missing")
        if not response.headers.get("content-type", "").startswith("application/json"):
            fail(method, template, response, f"content-type {response.headers.get('content-type')!r} is not JSON")
        problems = schema_errors(body, schema)
        if problems:
            fail(method, template, response, "body invalid against the documented schema: " + "; ".join(problems))
    check_headers(method, template, response, documented.get("headers", {}), body)


def check_headers(method: str, template: str, response: httpx.Response, documented: dict[str, Any],
                  body: Any) -> None:
    headers = response.headers
    for name, spec in documented.items():
        value = headers.get(name)
        if value is None:
            if name in REQUIRED_PAGING_HEADERS or name == "Location":
                fail(method, template, response, f"documented header {name} is missing")
            continue
        if not _header_value_ok(value, spec.get("schema", {})):
            fail(method, template, response, f"header {name}: {value!r} does not match {spec.get('schema')}")
    items = body if isinstance(body, list) else body.get("referenced_by_flows") if isinstance(body, dict) else None
    if "X-Paging-Count" in documented and items is not None and headers["X-Paging-Count"] != str(len(items)):
        fail(method, template, response, f"X-Paging-Count {headers['X-Paging-Count']} but {len(items)} items")
    if "X-Paging-Limit" in documented and items is not None:
        limit = int(headers["X-Paging-Limit"])
        if limit < 1 or len(items) > limit:
            fail(method, template, response, f"X-Paging-Limit {limit} with {len(items)} items")
    query = dict(parse_qsl(response.request.url.query.decode(), keep_blank_values=True))
    if "X-Paging-Reverse-Order" in documented and template not in UNORDERED_LISTINGS:
        wanted = query.get("reverse_order", "false").lower() in ("true", "1")
        if headers["X-Paging-Reverse-Order"] != str(wanted).lower():
            fail(method, template, response, f"X-Paging-Reverse-Order is {headers['X-Paging-Reverse-Order']} but "
                                             f"reverse_order={query.get('reverse_order', '(default false)')}")
    if "Link" in documented or "X-Paging-NextKey" in documented:
        check_link(method, template, response, query)
    if "Location" in documented:
        location = headers["Location"]
        if not isinstance(body, dict) or urlsplit(location).path != f"/flow-delete-requests/{body.get('id')}":
            fail(method, template, response, f"Location {location!r} does not name the deletion request in the body")


def check_link(method: str, template: str, response: httpx.Response, query: dict[str, str]) -> None:
    link, next_key = response.headers.get("Link"), response.headers.get("X-Paging-NextKey")
    if (link is None) != (next_key is None):
        fail(method, template, response, "Link and X-Paging-NextKey must be given together")
    if link is None:
        return
    match = re.fullmatch(r'\s*<([^>]+)>\s*;\s*rel="?next"?\s*', link)
    if match is None:
        fail(method, template, response, f"Link {link!r} is not <url>; rel=\"next\"")
    target = urlsplit(match.group(1))
    if target.path != response.request.url.path:
        fail(method, template, response, f"Link points at {target.path}, not {response.request.url.path}")
    linked = dict(parse_qsl(target.query, keep_blank_values=True))
    if linked.get("page") != next_key:
        fail(method, template, response, f"Link page={linked.get('page')!r} but X-Paging-NextKey={next_key!r}")
    lost = {k: v for k, v in query.items() if k != "page" and linked.get(k) != v}
    if lost:
        fail(method, template, response, f"Link drops or changes the request's query parameters {lost}")


def compare_head(template: str, get: httpx.Response, head: httpx.Response) -> None:
    if head.status_code != get.status_code:
        fail("HEAD", template, head, f"HEAD answered {head.status_code} where GET answered {get.status_code}")

    def kept(r: httpx.Response) -> dict[str, str]:
        return {k.lower(): v for k, v in r.headers.items() if k.lower() not in HEAD_IGNORED_HEADERS}

    if kept(head) != kept(get):
        fail("HEAD", template, head, f"HEAD headers {kept(head)} differ from GET headers {kept(get)}")


@pytest.fixture
async def tams(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the stack whose every response is checked against the official OpenAPI document."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120.0) as plain:
        checker = ResponseChecker(plain)
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=120.0,
                                     event_hooks={"response": [checker]}) as client:
            yield client


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not SEEN:
        return
    exercised = {(m, t) for m, t, _ in SEEN}
    missing = [f"{m} {t}" for m, t in operations() if (m, t) not in exercised]
    terminalreporter.write_line(
        f"conformance: {len(exercised)}/{len(operations())} operations exercised, "
        f"{len(SEEN)} (method, path, status) combinations checked against the OpenAPI document"
        + (f"; not exercised: {', '.join(missing)}" if 0 < len(missing) <= 15 else ""))
