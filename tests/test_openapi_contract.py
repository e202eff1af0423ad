"""What the OpenAPI document declares around the schemas, for generators and linters:
headers as components, the errors `Idempotency-Key` can cause, a server, a licence,
and the probes' explicit empty `security` (issue 19, item 4)."""

from collections.abc import Iterator
from typing import Any

import pytest

from prodorder_api.app import create_app
from tests.test_openapi_for_clients import resolve

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app().openapi()


def _operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _header_names(openapi: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    parameters = [resolve(openapi, p) for p in operation.get("parameters", [])]
    return {p["name"] for p in parameters if p["in"] == "header"}


def test_a_server_a_licence_and_a_contact(openapi: dict[str, Any]) -> None:
    # Relative first: Swagger UI on /docs calls the server it was served by.
    assert [server["url"] for server in openapi["servers"]] == ["/", "http://127.0.0.1:8000"]
    assert openapi["info"]["license"]["identifier"] == "Apache-2.0"
    assert openapi["info"]["contact"]["name"]


def test_probes_say_they_need_no_key_and_v1_says_it_does(openapi: dict[str, Any]) -> None:
    for path, _method, operation in _operations(openapi):
        if path.startswith("/v1/"):
            assert operation["security"] == [{"apiKey": []}], path
        else:
            assert operation["security"] == [], path


def test_every_write_takes_an_idempotency_key_and_declares_what_it_can_cause(
    openapi: dict[str, Any],
) -> None:
    writes = [
        (f"{method.upper()} {path}", operation)
        for path, method, operation in _operations(openapi)
        if path.startswith("/v1/") and method in {"post", "patch"}
    ]
    assert len(writes) > 30
    for where, operation in writes:
        assert "Idempotency-Key" in _header_names(openapi, operation), where
        responses = operation["responses"]
        assert "idempotency_key_in_use" in responses["409"]["description"], where
        assert "idempotency_key_reused" in responses["422"]["description"], where
        for status, response in responses.items():
            if status.startswith("2"):
                replayed = resolve(openapi, response["headers"]["Idempotent-Replayed"])
                assert replayed["schema"] == {"type": "string", "const": "true"}, where


def test_reads_take_no_idempotency_key(openapi: dict[str, Any]) -> None:
    for path, method, operation in _operations(openapi):
        if method in {"get", "delete"}:
            assert "Idempotency-Key" not in _header_names(openapi, operation), path


def test_every_response_declares_the_request_id_by_reference(openapi: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path} {status}"
        for path, method, operation in _operations(openapi)
        for status, response in operation["responses"].items()
        if response.get("headers", {}).get("X-Request-ID")
        != {"$ref": "#/components/headers/XRequestId"}
    ]
    assert missing == []


def test_headers_are_components_never_inline(openapi: dict[str, Any]) -> None:
    inline = [
        f"{method.upper()} {path} {status} {name}"
        for path, method, operation in _operations(openapi)
        for status, response in operation["responses"].items()
        for name, header in response.get("headers", {}).items()
        if "$ref" not in header
        and name not in {"Content-Security-Policy", "X-Content-Type-Options"}
    ]
    assert inline == []
    inline_parameters = [
        f"{method.upper()} {path} {parameter['name']}"
        for path, method, operation in _operations(openapi)
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "header"
    ]
    assert inline_parameters == []


def test_versioned_resources_answer_with_their_etag(openapi: dict[str, Any]) -> None:
    etag = {"$ref": "#/components/headers/ETag"}
    paths = openapi["paths"]
    order = paths["/v1/production-orders/{order_id}"]
    assert order["get"]["responses"]["200"]["headers"]["ETag"] == etag
    assert order["get"]["responses"]["304"]["headers"]["ETag"] == etag
    release = paths["/v1/production-orders/{order_id}/release"]["post"]
    assert release["responses"]["200"]["headers"]["ETag"] == etag
    assert paths["/v1/items"]["post"]["responses"]["201"]["headers"]["ETag"] == etag
    # A list is no one resource: no ETag.
    assert "ETag" not in paths["/v1/items"]["get"]["responses"]["200"]["headers"]


def test_the_pdf_is_binary_with_its_file_name(openapi: dict[str, Any]) -> None:
    pdf = openapi["paths"]["/v1/production-orders/{order_id}/work-order.pdf"]["get"]
    ok = pdf["responses"]["200"]
    assert ok["content"]["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    disposition = resolve(openapi, ok["headers"]["Content-Disposition"])
    assert "filename" in disposition["schema"]["examples"][0]


def test_limits_declare_retry_after_and_rate_limit_headers(openapi: dict[str, Any]) -> None:
    items = openapi["paths"]["/v1/items"]["get"]["responses"]
    assert items["429"]["headers"]["Retry-After"] == {"$ref": "#/components/headers/RetryAfter"}
    assert set(items["429"]["headers"]) >= {"RateLimit-Limit", "RateLimit-Reset"}
    assert items["503"]["headers"]["Retry-After"] == {"$ref": "#/components/headers/RetryAfter"}


def _components_under(openapi: dict[str, Any], roots: list[Any]) -> set[str]:
    found: set[str] = set()
    todo = list(roots)
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] not in found:
                found.add(ref.rsplit("/", 1)[1])
                todo.append(resolve(openapi, node))
            todo += node.values()
        elif isinstance(node, list):
            todo += node
    return found


def test_request_fields_with_a_default_stay_optional_for_generators(
    openapi: dict[str, Any],
) -> None:
    """openapi-typescript's default flags make a property with `default` required."""
    operations = [operation for _path, _method, operation in _operations(openapi)]
    requests = _components_under(openapi, [op.get("requestBody", {}) for op in operations])
    assert {"ItemCreate", "BomLineIn", "ReleaseRequest"} <= requests
    schemas = openapi["components"]["schemas"]
    with_default = [
        f"{name}.{field}"
        for name in requests
        for field, body in schemas[name].get("properties", {}).items()
        if "default" in body
    ]
    assert with_default == []
    item = schemas["ItemCreate"]
    assert "uom" not in item["required"]
    assert item["properties"]["uom"]["description"].endswith('Default: `"pcs"`.')


def test_answers_list_every_field_as_required(openapi: dict[str, Any]) -> None:
    operations = [operation for _path, _method, operation in _operations(openapi)]
    answers = _components_under(openapi, [op["responses"] for op in operations])
    assert {"OrderOut", "ItemOut", "ProblemInsufficientStock"} <= answers
    schemas = openapi["components"]["schemas"]
    optional = [
        f"{name}.{field}"
        for name in answers
        for field in schemas[name].get("properties", {})
        if field not in schemas[name].get("required", [])
    ]
    assert optional == []
