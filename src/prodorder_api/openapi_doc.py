"""What FastAPI's document leaves out, added for generators and linters.

`app.openapi_document` builds the document from the routes; the functions here then
declare what the service does around them, once, as components referenced by `$ref`:
the headers every answer or request carries (``ETag``, ``Idempotency-Key``,
``X-Request-ID``...), the errors ``Idempotency-Key`` can cause, events typed per
``type`` (in the feed and the webhook a subscriber receives), ``ProblemCode``, request
defaults in words (openapi-typescript would make them required), a server to call, a
licence, and an explicit empty ``security`` on the probes. Nothing here changes an
answer; it only describes it. `make openapi-lint` holds the result to Redocly's
``recommended`` rules and Spectral's ``spectral:oas``.
"""

import json
from typing import Any

from pydantic import TypeAdapter

from prodorder_api.errors import PROBLEM_CODES, PROBLEM_MEDIA_TYPE
from prodorder_api.events.schemas import Event
from prodorder_api.orders.schemas import OperationAction

# The first is relative, so that /docs ("Try it out") calls the server that served it,
# wherever that runs; the second is where `make run` listens.
SERVERS = [
    {"url": "/", "description": "The server this document came from."},
    {
        "url": "http://127.0.0.1:8000",
        "description": "`make run` on your own machine (`HOST`, `PORT`).",
    },
]
LICENSE = {"name": "Apache-2.0", "identifier": "Apache-2.0"}
CONTACT = {"name": "prodorder-api maintainers"}

# Routes that answer without an API key.
PUBLIC_PATHS = ("/healthz", "/readyz")
# Methods whose requests take `Idempotency-Key` (idempotency/service.py: METHODS).
IDEMPOTENT_METHODS = ("post", "patch")

_HEADER = "#/components/headers/"
_SCHEMA = "#/components/schemas/"
_PARAMETER = "#/components/parameters/"

HEADERS: dict[str, dict[str, Any]] = {
    "XRequestId": {
        "description": "The request's id, also in every log line it wrote: yours when you "
        "sent a sane `X-Request-ID` (1–128 of `A-Za-z0-9._:-`), else a new one. Sent on "
        "every answer of the application (not on the server's own 408, 431 and 503 "
        "refusals of a connection).",
        "schema": {"type": "string", "examples": ["5f0c1c8e2b9a4d7e9d5e3b1a2c4f6e8d"]},
    },
    "ETag": {
        "description": 'The resource\'s version as an entity tag, `"<version>"`: send it '
        "back as `If-Match` to change it only if nobody else has, or as `If-None-Match` "
        "to read it only if it changed.",
        "required": True,
        "schema": {"type": "string", "pattern": '^"\\d+"$', "examples": ['"3"']},
    },
    "IdempotentReplayed": {
        "description": "`true` when this answer is the stored one of an earlier request "
        "with the same `Idempotency-Key` (nothing was done again); absent otherwise.",
        "schema": {"type": "string", "const": "true"},
    },
    "ContentDisposition": {
        "description": "`inline`, with the file name to save it under.",
        "required": True,
        "schema": {"type": "string", "examples": ['inline; filename="work-order-000001.pdf"']},
    },
    "RetryAfter": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimitLimit": {
        "description": "Requests allowed in the window (with a rate limit set).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimitRemaining": {
        "description": "Requests left in the window (with a rate limit set).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimitReset": {
        "description": "Seconds until the window has room again (with a rate limit set).",
        "schema": {"type": "integer", "minimum": 0},
    },
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "IfMatch": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": 'The `ETag` you last saw, e.g. `"3"` (or several, comma-separated, '
        "or `*`): refused with 412 `precondition_failed`, changing nothing, when the "
        "resource has moved on. Without it the change applies to whatever version is "
        "current.",
        "schema": {"type": "string", "examples": ['"3"']},
    },
    "IfNoneMatch": {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": 'The `ETag` of the copy you hold, e.g. `"3"`: 304 without a body '
        "while the order is still at that version.",
        "schema": {"type": "string", "examples": ['"3"']},
    },
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Your unique key for this change (a UUID, say), 1–255 printable "
        "characters, scoped to your API key and kept 24 h. Sending the same request with "
        "the same key again replays the first successful answer "
        "(`Idempotent-Replayed: true`) instead of repeating the change; another request "
        "with that key is 422 `idempotency_key_reused`, and one sent while the first is "
        "still running 409 `idempotency_key_in_use`.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    },
}

# Header names in answers, as HTTP spells them, and the component that declares each.
RESPONSE_HEADERS = {
    "X-Request-ID": "XRequestId",
    "ETag": "ETag",
    "Idempotent-Replayed": "IdempotentReplayed",
    "Content-Disposition": "ContentDisposition",
    "Retry-After": "RetryAfter",
    "RateLimit-Limit": "RateLimitLimit",
    "RateLimit-Remaining": "RateLimitRemaining",
    "RateLimit-Reset": "RateLimitReset",
}
REQUEST_HEADERS = {"If-Match": "IfMatch", "If-None-Match": "IfNoneMatch"}

IDEMPOTENCY_IN_USE = (
    " Also `idempotency_key_in_use`: a request with the same `Idempotency-Key` is still "
    "running; retry it shortly."
)
IDEMPOTENCY_CONFLICT = {
    "description": "A request with the same `Idempotency-Key` is still running "
    "(`idempotency_key_in_use`); retry it shortly.",
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
IDEMPOTENCY_REUSED = (
    " Also `idempotency_key_reused`: the `Idempotency-Key` was used for a different request."
)


def header_ref(component: str) -> dict[str, str]:
    return {"$ref": _HEADER + component}


def parameter_ref(component: str) -> dict[str, str]:
    return {"$ref": _PARAMETER + component}


def finish(schema: dict[str, Any]) -> None:
    """Everything this module adds, in place: server, licence and contact; the problem
    and event unions' enums and variants; request defaults in words and answers' fields
    all required; then, per operation, security on the probes, header components, and
    `Idempotency-Key` with its errors on every write."""
    schema["servers"] = SERVERS
    schema["info"] = {**schema["info"], "license": LICENSE, "contact": CONTACT}
    components = schema.setdefault("components", {})
    components["parameters"] = {**components.get("parameters", {}), **PARAMETERS}
    components["headers"] = dict(HEADERS)
    schemas = components.get("schemas", {})
    _name_problem_enums(schemas)
    _type_events(schemas)
    components["schemas"] = dict(sorted(schemas.items()))
    schema["webhooks"] = WEBHOOKS
    _defaults_in_words(schemas, schema.get("paths", {}))
    _answers_carry_every_field(schemas, schema.get("paths", {}))
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if path in PUBLIC_PATHS:
                operation["security"] = []
            _reference_request_headers(operation)
            if path.startswith("/v1/") and method in IDEMPOTENT_METHODS:
                _take_idempotency_key(operation)
            for status, response in operation["responses"].items():
                _declare_response_headers(status, response, schemas)


def schema_ref(component: str) -> dict[str, str]:
    return {"$ref": _SCHEMA + component}


def _name_problem_enums(schemas: dict[str, Any]) -> None:
    """`ProblemCode`, every code a problem can carry, as one enum that `Problem` names;
    and `invalid_transition`'s status and actions as the enums of orders and operations
    (errors.py cannot import them: the state tables raise its errors)."""
    schemas["ProblemCode"] = {
        "type": "string",
        "enum": list(PROBLEM_CODES),
        "title": "ProblemCode",
        "description": "The machine-readable `code` of a problem document.",
    }
    problem = schemas["Problem"]
    problem.update(type="object", properties={"code": schema_ref("ProblemCode")})
    problem["required"] = ["code"]
    problem["description"] = (
        "An RFC 9457 problem document (`application/problem+json`); its `code` says which "
        "of these it is, and which fields it has beside `type`, `title`, `status` and "
        "`detail`."
    )
    schemas["OperationAction"] = TypeAdapter(OperationAction).json_schema()
    transition = schemas["ProblemInvalidTransition"]["properties"]
    transition["current_status"] = {
        "anyOf": [schema_ref("OrderStatus"), schema_ref("OperationStatus")],
        "description": transition["current_status"]["description"],
    }
    transition["allowed_actions"] = {
        "type": "array",
        "items": {"anyOf": [schema_ref("OrderAction"), schema_ref("OperationAction")]},
        "description": transition["allowed_actions"]["description"],
    }


def _type_events(schemas: dict[str, Any]) -> None:
    """Events as `Event`, one schema per `type` with its `data` typed, wherever the feed
    lists them (`EventPage`) and a webhook delivers them (`webhooks`)."""
    event = TypeAdapter(Event).json_schema(mode="serialization", ref_template=_SCHEMA + "{model}")
    for name, body in event.pop("$defs").items():
        body = _without_null_defaults(body)  # as FastAPI leaves them out
        if schemas.setdefault(name, body) != body:
            raise RuntimeError(f"the event schemas describe {name} otherwise than the routes")
    schemas["Event"] = {
        **event,
        "title": "Event",
        "description": "One change, exactly as the feed lists it and as a webhook delivers "
        "it; `type` says what `data` is.",
    }
    schemas["EventPage"]["properties"]["data"]["items"] = schema_ref("Event")
    del schemas["EventOut"]  # the model the feed is built with; `Event` describes it


_WEBHOOK_HEADERS = {
    "webhook-id": "The event's `id`: the same on every retry, so duplicates can be dropped.",
    "webhook-timestamp": "Unix seconds when this attempt was signed; refuse old ones.",
    "webhook-signature": '`v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.'
    "{body}\">` with the subscription's secret (Standard Webhooks); verify it with the "
    "`standardwebhooks` library.",
}
WEBHOOKS = {
    "event": {
        "post": {
            "operationId": "receiveEvent",
            "summary": "An event delivered to your webhook",
            "description": "What the service POSTs to each subscribed URL (`POST "
            "/v1/webhooks`): the event exactly as `GET /v1/events` lists it, signed per "
            "Standard Webhooks. Any 2xx within 10 s is success; anything else is retried "
            "with exponential backoff.",
            "tags": ["webhooks"],
            "security": [],
            "parameters": [
                {
                    "name": name,
                    "in": "header",
                    "required": True,
                    "description": text,
                    "schema": {"type": "string"},
                }
                for name, text in _WEBHOOK_HEADERS.items()
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema_ref("Event")}},
            },
            "responses": {
                "2XX": {"description": "Received; not delivered again."},
                "default": {"description": "Anything else: delivered again later."},
            },
        }
    }
}


def _defaults_in_words(schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    """A request field's default is said in its description, not as `default`.

    openapi-typescript, with its default flags (`defaultNonNullable`), makes every
    property that has a `default` required, in request bodies too: `POST /v1/items`
    would then need `uom`, `tracking` and `lead_time_days`. What the service fills in
    stays documented, in words. Answers carry every field, so the response schemas list
    all of theirs as required and need no defaults; a component used both ways with a
    default would be wrong either way, and is refused here."""
    operations = [op for item in paths.values() for op in item.values()]
    requests = _reachable(schemas, [op.get("requestBody", {}) for op in operations])
    responses = _reachable(schemas, [op["responses"] for op in operations])
    for name in sorted(requests):
        for field, body in schemas[name].get("properties", {}).items():
            if "default" not in body:
                continue
            if name in responses:
                raise RuntimeError(f"{name}.{field} has a default and is used in answers")
            value = json.dumps(body.pop("default"))
            body["description"] = f"{body.get('description', '')} Default: `{value}`.".strip()


def _answers_carry_every_field(schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    """Every field of an answer's schema is required: the service serialises whole models
    (no `exclude_none`, no `exclude_unset`), so a field with a default (`null` for an
    optional id) is still always there, and a generated client need not check for it."""
    operations = [op for item in paths.values() for op in item.values()]
    requests = _reachable(schemas, [op.get("requestBody", {}) for op in operations])
    for name in _reachable(schemas, [op["responses"] for op in operations]) - requests:
        properties = schemas[name].get("properties")
        if properties:
            schemas[name]["required"] = list(properties)


def _without_null_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_null_defaults(value)
            for key, value in node.items()
            if not (key == "default" and value is None)
        }
    if isinstance(node, list):
        return [_without_null_defaults(value) for value in node]
    return node


def _reachable(schemas: dict[str, Any], roots: list[Any]) -> set[str]:
    """The components `roots` reference, directly or through other components."""
    found: set[str] = set()
    todo = list(roots)
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_SCHEMA):
                name = ref.removeprefix(_SCHEMA)
                if name not in found:
                    found.add(name)
                    todo.append(schemas.get(name, {}))
            todo += node.values()
        elif isinstance(node, list):
            todo += node
    return found


def _reference_request_headers(operation: dict[str, Any]) -> None:
    for index, parameter in enumerate(operation.get("parameters", [])):
        if parameter.get("in") == "header" and parameter.get("name") in REQUEST_HEADERS:
            operation["parameters"][index] = parameter_ref(REQUEST_HEADERS[parameter["name"]])


def _take_idempotency_key(operation: dict[str, Any]) -> None:
    operation.setdefault("parameters", []).append(parameter_ref("IdempotencyKey"))
    responses = operation["responses"]
    if "409" in responses:
        responses["409"] = {**responses["409"]}
        responses["409"]["description"] += IDEMPOTENCY_IN_USE
    else:
        responses["409"] = dict(IDEMPOTENCY_CONFLICT)
    responses["422"] = {**responses["422"]}
    responses["422"]["description"] += IDEMPOTENCY_REUSED
    for status, response in responses.items():
        if status.startswith("2"):
            headers = {**response.get("headers", {}), "Idempotent-Replayed": {}}
            response["headers"] = headers
    operation["responses"] = dict(sorted(responses.items()))


def _versioned(response: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether the answer is one resource with a `version` (routing._set_etag then sets
    its `ETag`)."""
    ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    if not isinstance(ref, str):
        return False
    properties = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
    return "version" in properties


def _declare_response_headers(
    status: str, response: dict[str, Any], schemas: dict[str, Any]
) -> None:
    headers = dict(response.get("headers", {}))
    if status.startswith("2") and _versioned(response, schemas):
        headers["ETag"] = header_ref("ETag")
    if "application/pdf" in response.get("content", {}):
        headers["Content-Disposition"] = header_ref("ContentDisposition")
    for name in list(headers):
        if name in RESPONSE_HEADERS and "$ref" not in headers[name]:
            headers[name] = header_ref(RESPONSE_HEADERS[name])
    headers["X-Request-ID"] = header_ref("XRequestId")
    response["headers"] = dict(sorted(headers.items()))
