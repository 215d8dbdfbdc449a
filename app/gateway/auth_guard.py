"""The one place other gateway services ask "may this caller do that?" (auth checks outside KV).

Call one of these first thing in a handler, after decoding the request (the caller's token is already
in `request_token`, set by the dispatcher):

- `require_admin(server)`: admin-only calls of the cluster and auth services (root role needed while
  auth is on); refuses with etcd's rpctypes answers ("etcdserver: permission denied", 403, …).
- `require_admin_maintenance(server)`: etcd 3.4's maintenance service (defragment, hash, hashkv,
  snapshot) checks the same but answers the auth store's raw error with gRPC code Unknown, e.g.
  `{"error":"auth: permission denied",…,"code":2}` (HTTP 500), as real etcd does.
- `require_token(server)`: calls any user may make (lease grant, compaction): only a bad token is
  refused ("etcdserver: invalid auth token", 401).

Each returns the caller (`AuthInfo`, or None without a token). Reads and writes of keys are checked
by the server itself (`EtcdServer.range/put/txn`, the applier), not here.
"""

from __future__ import annotations

from etcdpy.app.errors import UNKNOWN, EtcdError
from etcdpy.app.server.auth import AuthInfo
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage import errors as e

# The auth store's own texts (etcd's auth package), which its maintenance service passes through.
_RAW = {
    e.UserEmptyError: "auth: user name is empty",
    e.UserNotFoundError: "auth: user not found",
    e.PermissionDeniedError: "auth: permission denied",
    e.InvalidAuthTokenError: "auth: invalid auth token",
}


def require_admin(server: EtcdServer) -> AuthInfo | None:
    return server.auth.check_admin()


def require_admin_maintenance(server: EtcdServer) -> AuthInfo | None:
    try:
        return server.auth.check_admin()
    except e.AuthError as exc:
        raise EtcdError(_RAW.get(type(exc), str(exc) or type(exc).__name__), UNKNOWN) from None


def require_token(server: EtcdServer) -> AuthInfo | None:
    return server.auth.authorize()
