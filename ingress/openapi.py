"""`GET /openapi.json`: an OpenAPI 3.1 description of every route of the ingress and the admin API.

Written as data next to the routes it describes (SPEC sections 3 and 7); the event schema itself comes from
the validator (core.events), so the description and the check cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from core.events import EVENT_ADAPTER


def _error(code: str, *, detail: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {"error": {"type": "string", "const": code}}
    if detail:
        props["detail"] = {"type": "array", "items": {}}
    return {"type": "object", "required": ["error"], "properties": props}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*pairs: tuple[int, str]) -> dict[str, Any]:
    return {str(status): _json(_error(code, detail=status == 400), code) for status, code in pairs}


_FILTERS = [
    {"name": name, "in": "query", "required": False, "schema": schema}
    for name, schema in (
        ("vendor", {"type": "string"}), ("type", {"type": "string"}), ("source", {"type": "string"}),
        ("since", {"type": "string", "format": "date-time"}), ("until", {"type": "string", "format": "date-time"}),
        ("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
        ("cursor", {"type": "string"}),
    )
]
_ADMIN_ERRORS = _errors((401, "unauthorized"), (404, "not_found"), (503, "unavailable"))
_SIGNING_HEADERS = [
    {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "Stripe-Signature",
                 "X-Shopify-Hmac-Sha256", "X-Shopify-Triggered-At")
]
_DEAD_LETTER = {"type": "object", "required": [
    "id", "source", "event_id", "event_type", "vendor", "operation", "idempotency_key", "attempts",
    "first_failed_at", "last_failed_at", "error", "event"]}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document() -> dict[str, Any]:
    event_schema = EVENT_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
    components = event_schema.pop("$defs", {})
    components["Event"] = event_schema
    admin = [{"bearerAuth": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "sluice", "version": "1", "description": "Signed e-commerce webhooks in, vendor calls out."},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/webhooks/{source}": {"post": {
                "summary": "Receive one signed event",
                "parameters": [{"name": "source", "in": "path", "required": True, "schema": {"type": "string"}},
                               *_SIGNING_HEADERS],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Event"}}}},
                "responses": {
                    "202": _json({"type": "object", "properties": {"id": {"type": "string"},
                                                                   "status": {"const": "queued"}}}, "stored"),
                    "200": _json({"type": "object", "properties": {"id": {"type": "string"},
                                                                   "status": {"const": "duplicate"}}}, "seen before"),
                    **_errors((400, "invalid_event"), (401, "invalid_signature"), (404, "unknown_source"),
                              (408, "request_timeout"), (413, "payload_too_large"), (415, "unsupported_media_type"),
                              (503, "unavailable")),
                },
            }},
            "/healthz": {"get": {"summary": "Process is up", "responses": {"200": {"description": "up"}}}},
            "/readyz": {"get": {"summary": "Redis answers", "responses": {
                "200": {"description": "ready"}, **_errors((503, "unavailable"))}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}},
            "/admin/events/{source}/{event_id}": {"get": {
                "summary": "An event and the state of each of its calls", "security": admin,
                "parameters": [{"name": "source", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object", "required": ["event", "calls"]}, "found"),
                              **_ADMIN_ERRORS},
            }},
            "/admin/dead-letters": {"get": {
                "summary": "Dead letters, oldest first", "security": admin, "parameters": _FILTERS,
                "responses": {"200": _json({"type": "object", "required": ["items", "next_cursor"], "properties": {
                    "items": {"type": "array", "items": _DEAD_LETTER},
                    "next_cursor": {"type": ["string", "null"]}}}, "a page"),
                    **_errors((400, "invalid_request")), **_ADMIN_ERRORS},
            }},
            "/admin/dead-letters/replay": {"post": {
                "summary": "Replay every matching dead letter", "security": admin,
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False, "properties": {
                        "vendor": {"type": "string"}, "type": {"type": "string"}, "source": {"type": "string"},
                        "since": {"type": "string", "format": "date-time"},
                        "until": {"type": "string", "format": "date-time"}, "dry_run": {"type": "boolean"}}}}}},
                "responses": {"202": _json({"type": "object", "properties": {"replayed": {"type": "integer"}}},
                                           "queued for replay"),
                              "200": _json({"type": "object", "properties": {"would_replay": {"type": "integer"}}},
                                           "dry run"),
                              **_errors((400, "invalid_request")), **_ADMIN_ERRORS},
            }},
            "/admin/dead-letters/{id}": {
                "get": {"summary": "One dead letter", "security": admin, "parameters": [_ID],
                        "responses": {"200": _json(_DEAD_LETTER, "found"), **_ADMIN_ERRORS}},
                "delete": {"summary": "Delete a dead letter", "security": admin, "parameters": [_ID],
                           "responses": {"204": {"description": "deleted"}, **_ADMIN_ERRORS}},
            },
            "/admin/dead-letters/{id}/replay": {"post": {
                "summary": "Replay one dead letter", "security": admin, "parameters": [_ID],
                "responses": {"202": _json({"type": "object", "properties": {"replayed": {"const": 1}}}, "queued"),
                              **_ADMIN_ERRORS},
            }},
        },
    }
