"""The OpenAPI 3.1 document: FastAPI's own routes plus the v3 gateway, generated from app.schema.

The gateway's routes sit below FastAPI (for speed), so their paths and schemas are added here from the
same message declarations the codec decodes with; the document cannot drift from what is served.

How etcd's JSON is described, so generated clients (openapi-python-client, datamodel-codegen,
openapi-typescript) read and write it unchanged:

- 64-bit integers are decimal strings (`format: int64`/`uint64` with a digits `pattern`), as
  grpc-gateway writes them; bytes are base64 strings (`contentEncoding: base64`, no `format: byte`, which
  some generators map to types that refuse binary values); enums are strings, by name.
- The streaming RPCs (`/v3/watch`, `/v3/lease/keepalive`, `/v3/maintenance/snapshot`,
  `/v3/election/observe`) answer newline-delimited JSON: one `{"result": <Response>}` object a line.
  They are described as `application/x-ndjson` with the line's schema (the *item* schema), and also
  as `application/json`, the Content-Type etcd's gateway (and so etcdpy) labels them with.
- Every error is etcd's `Status` object (`{"error", "message", "code"}`), listed per HTTP status.
- The token is the `etcdToken` security scheme: the raw `Authorization` header, as etcd's gateway reads it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from etcdpy.app.gateway.schema import ENUMS, MESSAGES, RPCS, Field

_SCALAR_SCHEMAS: dict[str, dict[str, Any]] = {
    "bytes": {"type": "string", "contentEncoding": "base64", "description": "standard base64 with padding",
              "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"},
    "int64": {"type": "string", "format": "int64", "pattern": "^-?(0|[1-9][0-9]*)$",
              "description": "decimal; numbers accepted on input"},
    "uint64": {"type": "string", "format": "uint64", "pattern": "^(0|[1-9][0-9]*)$",
               "description": "decimal; numbers accepted on input"},
    "int32": {"type": "integer", "format": "int32"},
    "uint32": {"type": "integer", "format": "int64"},
    "bool": {"type": "boolean"},
    "string": {"type": "string"},
}


def _field_schema(field: Field) -> dict[str, Any]:
    if field.is_scalar:
        item: dict[str, Any] = dict(_SCALAR_SCHEMAS[field.kind])
    else:
        item = {"$ref": f"#/components/schemas/{field.kind}"}
    schema = {"type": "array", "items": item} if field.repeated else item
    if field.doc:
        schema = {**schema, "description": field.doc} if "$ref" not in schema else {
            "allOf": [schema], "description": field.doc}
    return schema


def component_schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, enum in ENUMS.items():
        out[name] = {"type": "string", "enum": list(enum.values), "default": next(iter(enum.values))}
    for name, fields in MESSAGES.items():
        out[name] = {
            "type": "object",
            "properties": {f.name: _field_schema(f) for f in fields},
        }
    return out


def _json_body(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


NDJSON = "application/x-ndjson"
SECURITY_SCHEME = "etcdToken"
# The statuses etcd's gateway answers with its error object (grpc-gateway's code -> status table).
ERROR_STATUSES = {
    "400": "Invalid argument (bad JSON, a bad field, etcd's validation), or out of range.",
    "401": "Invalid auth token.",
    "403": "Permission denied.",
    "404": "Not found (lease, member, key of a lock or election).",
    "408": "Canceled.",
    "412": "Failed precondition (auth not enabled, not leader, ...).",
    "429": "Too many requests (the space quota).",
    "500": "Internal or unknown error.",
    "503": "Unavailable (no leader, a learner refusing the call, the server stopping).",
    "504": "Deadline exceeded (e.g. a proposal that timed out).",
}
# Schemas of FastAPI routes whose handlers answer raw Responses (so FastAPI cannot infer them).
EXTRA_SCHEMAS: dict[str, Any] = {
    "Version": {"type": "object", "required": ["etcdserver", "etcdcluster"], "properties": {
        "etcdserver": {"type": "string", "description": "This member's version."},
        "etcdcluster": {"type": "string", "description": "The cluster version (`3.4.0`), empty at first."}}},
    "Health": {"type": "object", "required": ["health"], "properties": {
        "health": {"type": "string", "enum": ["true", "false"]},
        "reason": {"type": "string", "description": "Why not healthy (`/livez`, `/readyz` only)."}}},
}


# OpenAPI links: what a client (and schemathesis's stateful runs) may call next with an answer's data.
LINKS: dict[str, dict[str, Any]] = {
    "/v3/kv/put": {
        "RangeThePutKey": {"operationId": "kv_range", "requestBody": {"key": "$request.body#/key"}},
        "DeleteThePutKey": {"operationId": "kv_deleterange", "requestBody": {"key": "$request.body#/key"}},
    },
    "/v3/lease/grant": {
        "TimeToLiveOfTheLease": {"operationId": "lease_timetolive",
                                 "requestBody": {"ID": "$response.body#/ID"}},
        "RevokeTheLease": {"operationId": "lease_revoke", "requestBody": {"ID": "$response.body#/ID"}},
    },
}


def error_responses() -> dict[str, Any]:
    return {status: {"description": what, "content": _json_body("Status")}
            for status, what in ERROR_STATUSES.items()}


def _rpc_success(rpc_response: str, links: dict[str, Any] | None = None) -> dict[str, Any]:
    if rpc_response.endswith("StreamLine"):
        return {"description": "A stream: one JSON object a line (`{\"result\": …}`), until the body or "
                               "the connection ends. An error after the first line is a line "
                               "`{\"error\": {…}}`.",
                # Served as `application/json`, the label etcd's gateway gives the same stream; the
                # x-ndjson entry says what the body really is, for clients that read it line by line.
                "content": {NDJSON: {"schema": {"$ref": f"#/components/schemas/{rpc_response}"}},
                            **_json_body(rpc_response)}}
    ok: dict[str, Any] = {"description": "OK", "content": _json_body(rpc_response)}
    if links:
        ok["links"] = links
    return ok


def _type_fastapi_routes(paths: dict[str, Any]) -> None:
    """Describe what the operational routes and `/watch/sse` really answer."""
    ref = {"$ref": "#/components/schemas/Health"}
    for path in ("/health", "/livez", "/readyz"):
        op = paths.get(path, {}).get("get")
        if op is None:
            continue
        # etcd serves the health JSON as text/plain; a failing check is the same JSON with 503.
        op["responses"] = {
            "200": {"description": "Healthy.", "content": {"text/plain": {"schema": ref}}},
            "503": {"description": "Not healthy.", "content": {"text/plain": {"schema": ref}}}}
    if "/version" in paths:
        paths["/version"]["get"]["responses"] = {
            "200": {"description": "OK", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Version"}}}}}
    sse = paths.get("/watch/sse", {}).get("get")
    if sse is not None:
        sse["responses"].pop("422", None)  # its parameter errors are etcd's 400, not FastAPI's 422
        for status in ("400", "401", "403", "503"):
            sse["responses"][status] = {"description": ERROR_STATUSES[status],
                                        "content": _json_body("Status")}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(component_schemas())
    schemas.update(EXTRA_SCHEMAS)
    doc["components"]["securitySchemes"] = {SECURITY_SCHEME: {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": "The token of `/v3/auth/authenticate`, bare (as etcd's gateway reads it)."}}
    # Optional: without auth enabled no token is needed.
    doc["security"] = [{}, {SECURITY_SCHEME: []}]
    paths = doc.setdefault("paths", {})
    _type_fastapi_routes(paths)
    for rpc in RPCS:
        op_id = rpc.path.removeprefix("/v3/").replace("/", "_")
        paths[rpc.path] = {
            "post": {
                "summary": rpc.summary,
                "operationId": op_id,
                "tags": [rpc.path.split("/")[2]],
                "requestBody": {"required": False, "content": _json_body(rpc.request)},
                "responses": {"200": _rpc_success(rpc.response, LINKS.get(rpc.path)), **error_responses()},
            }
        }
    return doc
