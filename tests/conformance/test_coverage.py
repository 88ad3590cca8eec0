"""The suite itself: every documented operation and status has a test named after it.

Test names are `test_<method>_<path words>_<status>_<what it proves>`, where the path words are the
template's segments with parameters written `id` (or `name`) and `-` as `_`: `GET /flows/{flowId}/tags/{name}`
is `test_get_flows_id_tags_name_200_…`, `GET /` is `test_get_root_200_…`. A documented status with
no test must be listed in NOT_OBSERVABLE with the reason it cannot be produced over HTTP here.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tests.conformance.conftest import ERROR_STATUSES_ALLOWED_UNDOCUMENTED, documented_responses, operations

NO_AUTH = "no authentication or authorisation in this release, and nothing else makes this operation forbidden"
NO_WEBHOOKS = "webhooks are not offered (README), so every webhook operation answers its documented 404"

NOT_OBSERVABLE: dict[tuple[str, str, str], str] = {
    ("POST", "/service", "403"): NO_AUTH,
    **{(m, "/service/webhooks", s): NO_WEBHOOKS for m, s in (("GET", "200"), ("HEAD", "200"), ("POST", "201"),
                                                              ("POST", "400"))},
    **{(m, "/service/webhooks/{webhookId}", s): NO_WEBHOOKS
       for m, s in (("GET", "200"), ("HEAD", "200"), ("PUT", "201"), ("PUT", "400"), ("PUT", "403"),
                    ("DELETE", "204"), ("DELETE", "403"))},
    **{(m, f"/sources/{{sourceId}}/{field}", "403"): NO_AUTH + " (sources have no read_only)"
       for m in ("PUT", "DELETE") for field in ("tags/{name}", "label", "description")},
    ("PUT", "/flows/{flowId}/read_only", "403"): NO_AUTH + " (read_only itself stays writable on a read-only flow)",
    ("POST", "/objects/{objectId}/instances", "403"): NO_AUTH,
    ("DELETE", "/objects/{objectId}/instances", "403"): NO_AUTH,
}

NAME = re.compile(r"^test_(get|head|put|post|delete)_(.+?)_(\d{3})_\w+$")


def path_words(template: str) -> str:
    if template == "/":
        return "root"
    words = re.sub(r"\{name\}", "name", template.strip("/"))
    words = re.sub(r"\{[^}]+\}", "id", words)
    return words.replace("-", "_").replace("/", "_")


def named_tests() -> dict[tuple[str, str], set[str]]:
    """(METHOD, path words) -> statuses, from the test functions of every module of this package."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(f"tests.conformance.{path.stem}")
        for name in dir(module):
            match = NAME.match(name)
            if match and callable(getattr(module, name)):
                found.setdefault((match.group(1).upper(), match.group(2)), set()).add(match.group(3))
    return found


def test_the_official_document_has_the_85_operations_the_readme_lists() -> None:
    assert len(operations()) == 85


def test_every_documented_operation_and_status_has_a_named_test() -> None:
    found = named_tests()
    missing = []
    for method, template in operations():
        tested = found.get((method, path_words(template)), set())
        for status in documented_responses(method, template):
            if status not in tested and (method, template, status) not in NOT_OBSERVABLE:
                missing.append(f"{method} {template} {status}")
    assert not missing, "documented statuses without a test: " + ", ".join(missing)


def test_every_test_name_names_a_real_operation_and_an_allowed_status() -> None:
    by_words = {(m, path_words(t)): t for m, t in operations()}
    wrong = []
    for (method, words), statuses in named_tests().items():
        template = by_words.get((method, words))
        if template is None:
            wrong.append(f"{method} {words}: no such operation")
            continue
        allowed = set(documented_responses(method, template)) | {str(s) for s in ERROR_STATUSES_ALLOWED_UNDOCUMENTED}
        wrong += [f"{method} {template} {s}: neither documented nor an allowed error" for s in statuses - allowed]
    assert not wrong, wrong


def test_not_observable_lists_only_documented_statuses_that_no_test_covers() -> None:
    found = named_tests()
    for method, template, status in NOT_OBSERVABLE:
        assert status in documented_responses(method, template), (method, template, status)
        assert status not in found.get((method, path_words(template)), set()), (method, template, status)
