"""The OpenAPI document: FastAPI's own routes plus the v3 gateway, generated from app.schema.

The gateway's routes sit below FastAPI (for speed), so their paths and schemas are added here from the
same message declarations the codec decodes with; the document cannot drift from what is served.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from etcdpy.app.gateway.schema import ENUMS, MESSAGES, RPCS, Field

_SCALAR_SCHEMAS: dict[str, dict[str, Any]] = {
    "bytes": {"type": "string", "format": "byte", "description": "standard base64 with padding"},
    "int64": {"type": "string", "format": "int64", "description": "decimal; numbers accepted on input"},
    "uint64": {"type": "string", "format": "uint64", "description": "decimal; numbers accepted on input"},
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


def build_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(component_schemas())
    paths = doc.setdefault("paths", {})
    for rpc in RPCS:
        op_id = rpc.path.removeprefix("/v3/").replace("/", "_")
        paths[rpc.path] = {
            "post": {
                "summary": rpc.summary,
                "operationId": op_id,
                "tags": [rpc.path.split("/")[2]],
                "requestBody": {"required": False, "content": _json_body(rpc.request)},
                "responses": {
                    "200": {"description": "OK", "content": _json_body(rpc.response)},
                    "default": {"description": "etcd error", "content": _json_body("Status")},
                },
            }
        }
    return doc
