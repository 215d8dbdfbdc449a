"""`/v3/auth/*`: etcd's Auth service over the JSON gateway (3.4's calls, plus 3.5's `status`).

Every answer carries etcd's header (revision = the KV store's current revision). The caller's token
reaches `AuthService` through `request_token`, set by the dispatcher from the `Authorization` header.
"""

from __future__ import annotations

from typing import Any

from etcdpy.app.gateway import codec
from etcdpy.app.gateway.dispatch import Handler
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.auth_store import PERM_NAMES, Permission


def _out(server: EtcdServer, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"header": server.header()}
    out.update((k, v) for k, v in fields.items() if v)  # proto3 JSON leaves empty fields out
    return out


def perm_json(p: Permission) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.perm_type:
        out["permType"] = PERM_NAMES[p.perm_type]
    if p.key:
        out["key"] = codec.b64(p.key)
    if p.range_end:
        out["range_end"] = codec.b64(p.range_end)
    return out


async def auth_enable(server: EtcdServer, body: bytes) -> dict[str, Any]:
    codec.decode_request(body, "AuthEnableRequest")
    await server.auth.enable()
    return _out(server)


async def auth_disable(server: EtcdServer, body: bytes) -> dict[str, Any]:
    codec.decode_request(body, "AuthDisableRequest")
    await server.auth.disable()
    return _out(server)


async def auth_status(server: EtcdServer, body: bytes) -> dict[str, Any]:
    codec.decode_request(body, "AuthStatusRequest")
    enabled, revision = await server.auth.status()
    return _out(server, enabled=enabled, authRevision=str(revision) if revision else "")


async def authenticate(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthenticateRequest")
    token = await server.auth.authenticate(d.get("name", ""), d.get("password", ""))
    return _out(server, token=token)


async def user_add(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthUserAddRequest")
    no_password = bool(d.get("options", {}).get("no_password", False))
    await server.auth.user_add(d.get("name", ""), d.get("password", ""), no_password)
    return _out(server)


async def user_get(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthUserGetRequest")
    roles = await server.auth.user_get(d.get("name", ""))
    return _out(server, roles=roles)


async def user_list(server: EtcdServer, body: bytes) -> dict[str, Any]:
    codec.decode_request(body, "AuthUserListRequest")
    return _out(server, users=await server.auth.user_list())


async def user_delete(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthUserDeleteRequest")
    await server.auth.user_delete(d.get("name", ""))
    return _out(server)


async def user_change_password(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthUserChangePasswordRequest")
    await server.auth.user_change_password(d.get("name", ""), d.get("password", ""))
    return _out(server)


async def user_grant(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthUserGrantRoleRequest")
    await server.auth.user_grant_role(d.get("user", ""), d.get("role", ""))
    return _out(server)


async def user_revoke(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthUserRevokeRoleRequest")
    await server.auth.user_revoke_role(d.get("name", ""), d.get("role", ""))
    return _out(server)


async def role_add(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthRoleAddRequest")
    await server.auth.role_add(d.get("name", ""))
    return _out(server)


async def role_get(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthRoleGetRequest")
    perms = await server.auth.role_get(d.get("role", ""))
    return _out(server, perm=[perm_json(p) for p in perms])


async def role_list(server: EtcdServer, body: bytes) -> dict[str, Any]:
    codec.decode_request(body, "AuthRoleListRequest")
    return _out(server, roles=await server.auth.role_list())


async def role_delete(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthRoleDeleteRequest")
    await server.auth.role_delete(d.get("role", ""))
    return _out(server)


async def role_grant(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthRoleGrantPermissionRequest")
    p = d.get("perm")
    perm = None if p is None else Permission(p.get("permType", 0), p.get("key", b""), p.get("range_end", b""))
    await server.auth.role_grant_permission(d.get("name", ""), perm)
    return _out(server)


async def role_revoke(server: EtcdServer, body: bytes) -> dict[str, Any]:
    d = codec.decode_request(body, "AuthRoleRevokePermissionRequest")
    await server.auth.role_revoke_permission(d.get("role", ""), d.get("key", b""), d.get("range_end", b""))
    return _out(server)


RPCS: dict[str, Handler] = {
    "/v3/auth/enable": auth_enable,
    "/v3/auth/disable": auth_disable,
    "/v3/auth/status": auth_status,
    "/v3/auth/authenticate": authenticate,
    "/v3/auth/user/add": user_add,
    "/v3/auth/user/get": user_get,
    "/v3/auth/user/list": user_list,
    "/v3/auth/user/delete": user_delete,
    "/v3/auth/user/changepw": user_change_password,
    "/v3/auth/user/grant": user_grant,
    "/v3/auth/user/revoke": user_revoke,
    "/v3/auth/role/add": role_add,
    "/v3/auth/role/get": role_get,
    "/v3/auth/role/list": role_list,
    "/v3/auth/role/delete": role_delete,
    "/v3/auth/role/grant": role_grant,
    "/v3/auth/role/revoke": role_revoke,
}
