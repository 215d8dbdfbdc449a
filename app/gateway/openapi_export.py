"""`python -m etcdpy.app.gateway.openapi_export > openapi/openapi.json`: the document as committed."""

from __future__ import annotations

import json
import sys

from etcdpy.app.gateway.api import create_api


def export() -> str:
    """The document as committed in openapi/openapi.json (stable key order, trailing newline)."""
    return json.dumps(create_api(None).openapi(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(export())
