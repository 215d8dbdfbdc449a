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
