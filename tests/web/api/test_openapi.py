"""The OpenAPI document: served without a token, valid OpenAPI 3.1, and complete: every
registered operation with its parameters, schemas and problem responses."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from pytrs.web.api import registry
from pytrs.web.api.openapi import openapi_path, problem_statuses
from pytrs.web.api.problems import PROBLEM_TYPES

from .conftest import ApiClient


async def test_document_is_valid_and_complete(api_client: ApiClient) -> None:
    answer = await api_client().get("/openapi.json")  # no token
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    document: dict[str, Any] = answer.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    schemas = document["components"]["schemas"]
    for op in registry.operations():
        entry = document["paths"][openapi_path(op.path)][op.method.lower()]
        assert entry["operationId"] == op.name and entry["tags"] == [op.tag]
        assert entry["summary"], f"{op.name} has no summary"
        assert entry["x-pytrs-access"] == op.access
        names = {p["name"] for p in entry["parameters"] if p["in"] == "path"}
        assert names == {name for name, _ in op.path_params}, op.name
        for status, slugs in problem_statuses(op).items():
            assert str(status) in entry["responses"], (op.name, status, slugs)
        assert {"401", "403"} <= set(entry["responses"])
        _refs_resolve(entry, schemas)
    assert (await api_client().get("/openapi.json")).json() == document  # made once, stable


def _refs_resolve(value: Any, schemas: dict[str, Any]) -> None:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str):
            assert ref.removeprefix("#/components/schemas/") in schemas, ref
        for item in value.values():
            _refs_resolve(item, schemas)
    elif isinstance(value, list):
        for item in value:
            _refs_resolve(item, schemas)


async def test_queue_schemas_are_documented(api_client: ApiClient) -> None:
    document = (await api_client().get("/openapi.json")).json()
    queue = document["components"]["schemas"]["QueueOut"]
    assert set(queue["required"]) == {"id", "name", "permission", "open_tickets"}
    assert queue["properties"]["permission"]["enum"] == ["rw", "ro"]
    get_queue = document["paths"]["/queues/{queue_id}"]["get"]
    assert get_queue["parameters"][0]["schema"]["type"] == "integer"
    assert get_queue["description"].startswith("The queue, if the agent may read it")


async def test_problem_types_page(api_client: ApiClient) -> None:
    page = await api_client().get("/problems")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for slug in PROBLEM_TYPES:
        assert f'id="{slug}"' in page.text, slug


async def test_docs_page_shows_every_operation(api_client: ApiClient) -> None:
    page = await api_client().get("/docs")  # no token
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text and "https://" not in page.text  # nothing inline, no CDN
    for op in registry.operations():
        assert f'id="{op.name}"' in page.text, op.name
        assert f"{op.method} /api/v1{openapi_path(op.path)}" in page.text, op.name
    assert 'id="model-QueueOut"' in page.text


def test_framework_features_are_documented() -> None:
    """The test-only operations (multipart, idempotent, admin) in a document of their own."""
    from pytrs.web.api.openapi import STORABLE_TEXT, document

    from .framework_ops import api as test_api

    doc = document(test_api.operations, version="test")
    validate(doc)
    create = doc["paths"]["/things"]["post"]
    multipart = create["requestBody"]["content"]["multipart/form-data"]
    assert multipart["encoding"] == {"meta": {"contentType": "application/json"}}
    assert multipart["schema"]["properties"]["attachments"]["items"]["format"] == "binary"
    assert multipart["schema"]["additionalProperties"] is False  # extra fields are refused
    assert create["requestBody"]["required"] is True
    header = next(p for p in create["parameters"] if p["in"] == "header")
    assert header["name"] == "Idempotency-Key" and header["schema"]["maxLength"] == 255
    assert "Idempotent-Replayed" in create["responses"]["201"]["headers"]
    assert set(create["responses"]) == {"201", "401", "403", "409", "413", "415", "422"}
    thing = doc["components"]["schemas"]["ThingIn"]["properties"]["name"]
    assert thing["pattern"] == STORABLE_TEXT and thing["minLength"] == 1
    made = doc["components"]["schemas"]["ThingOut"]["properties"]["made"]
    assert made == {"format": "date-time", "title": "Made", "type": "string"}
    admin = doc["paths"]["/admin/{n}"]["patch"]
    assert admin["x-pytrs-scope"] == "admin" and "204" in admin["responses"]
