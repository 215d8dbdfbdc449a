"""The committed OpenAPI document is the one the app serves, and it covers every gateway route."""

from pathlib import Path

from etcdpy.app.gateway.asgi import gateway_routes
from etcdpy.app.gateway.openapi_export import export

SPEC = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def test_committed_spec_matches_the_app() -> None:
    assert SPEC.read_text() == export(), (
        "openapi/openapi.json is stale: regenerate it with "
        "`python -m etcdpy.app.gateway.openapi_export > openapi/openapi.json`"
    )


def test_every_gateway_route_is_documented() -> None:
    import json

    paths = json.loads(export())["paths"]
    missing = sorted(p for p in gateway_routes().rpcs if p not in paths)
    assert not missing, f"gateway routes without an OpenAPI entry: {missing}"
    for path in gateway_routes().rpcs:
        op = paths[path]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[1] in json.loads(export())["components"]["schemas"]


def test_spec_validates_as_openapi_3_1() -> None:
    import json

    from openapi_spec_validator import OpenAPIV31SpecValidator, validate

    doc = json.loads(SPEC.read_text())
    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_etcd_json_is_described_for_generators() -> None:
    import json

    doc = json.loads(export())
    schemas = doc["components"]["schemas"]
    key = schemas["KeyValue"]["properties"]["key"]
    assert key["contentEncoding"] == "base64" and "format" not in key
    rev = schemas["KeyValue"]["properties"]["mod_revision"]
    assert rev["type"] == "string" and rev["format"] == "int64"
    assert schemas["SortOrder"]["enum"] == ["NONE", "ASCEND", "DESCEND"]
    for path in ("/v3/watch", "/v3/lease/keepalive", "/v3/maintenance/snapshot", "/v3/election/observe"):
        ok = doc["paths"][path]["post"]["responses"]["200"]["content"]
        assert list(ok) == ["application/x-ndjson", "application/json"], path
        item = ok["application/x-ndjson"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert list(schemas[item]["properties"]) == ["result"], path
    put = doc["paths"]["/v3/kv/put"]["post"]["responses"]
    for status in ("400", "401", "403", "429", "503"):
        assert put[status]["content"]["application/json"]["schema"]["$ref"].endswith("/Status")
    assert doc["components"]["securitySchemes"]["etcdToken"] == {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": doc["components"]["securitySchemes"]["etcdToken"]["description"]}
    version = doc["paths"]["/version"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert version == {"$ref": "#/components/schemas/Version"}
    health = doc["paths"]["/health"]["get"]["responses"]["200"]["content"]["text/plain"]["schema"]
    assert health == {"$ref": "#/components/schemas/Health"}
    sse = doc["paths"]["/watch/sse"]["get"]["responses"]
    assert sse["403"]["content"]["application/json"]["schema"]["$ref"].endswith("/Status")
    assert "/kv/{key}" in doc["paths"]
