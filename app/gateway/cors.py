"""etcd's `--cors`: which browser origins may call the client URLs, applied to every response.

With the default `*` every answer carries `Access-Control-Allow-Origin: *` (the headers are part of each
route's constant header list, so this costs nothing). With a list of origins, etcd answers a request
whose `Origin` is listed with the CORS headers and that origin, and any other request with none, on
every path (the v3 gateway, preflights, /health, the streams): `CorsFilter` rewrites the headers of
each response that carries the allow-all default, once, at its start, so those routes need not know.
The beyond-etcd SSE endpoints apply the policy themselves (their preflights allow GET and
`Last-Event-ID`) and are left as they answer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALLOW_METHODS = b"POST, GET, OPTIONS, PUT, DELETE"
_ALLOW_HEADERS = b"accept, content-type, authorization"


class Cors:
    """The `--cors` origins: comma-separated, `*` (or nothing) for every origin."""

    def __init__(self, spec: str) -> None:
        self.origins = {o.strip() for o in spec.split(",") if o.strip()}
        self.allow_all = not self.origins or "*" in self.origins

    def allow(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for a request from `origin`, None to send none."""
        if self.allow_all:
            return "*"
        if origin and origin in self.origins:
            return origin
        return None

    def headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        allowed = self.allow(origin)
        out = [(b"vary", b"Origin")]
        if allowed is not None:
            out.append((b"access-control-allow-origin", allowed.encode()))
        return out


def _origin(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            return str(value.decode("latin-1"))
    return None


def _allows_all(message: Message) -> bool:
    return any(k.lower() == b"access-control-allow-origin" and v == b"*"
               for k, v in message.get("headers", []))


class CorsFilter:
    """Wraps the client app when `--cors` lists origins: every response's CORS headers are etcd's for
    an allowed origin (echoing it) and absent for any other."""

    def __init__(self, app: ASGIApp, cors: Cors) -> None:
        self.app = app
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = self.cors.allow(_origin(scope))

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and _allows_all(message):
                headers = [(k, v) for k, v in message.get("headers", [])
                           if not k.lower().startswith(b"access-control-")]
                if allowed is not None:
                    headers += [(b"access-control-allow-headers", _ALLOW_HEADERS),
                                (b"access-control-allow-methods", _ALLOW_METHODS),
                                (b"access-control-allow-origin", allowed.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cors)
