"""Authentication and authorisation for one member: who sends a request, and what they may do.

`AuthService` owns the auth store (users, roles, permissions; `etcdpy.storage.auth_store`), the token
provider (`auth_tokens`) and the checks etcd makes on every request:

- The token comes with the request: the gateway puts the raw `Authorization` header (or the
  WebSocket/SSE equivalent) in `request_token` for the duration of the call, as etcd reads it from
  the gRPC metadata. A header that names no live token is refused with "invalid auth token" even while
  auth is disabled, as etcd does; no header means "no user", unless the request came with a verified
  client certificate under --client-cert-auth: then its CommonName (`request_cert_cn`) is the user.
- Reads (range, read-only txn, watch creation) are checked when they are served, and answered with
  "revision of auth store is old" if the auth state moved while they ran.
- Writes are proposed `Stamped` with the user and the auth revision they were authorised at; the
  applier re-checks them against the state at apply time (`check_command`), so a permission revoked
  between propose and apply is honoured on every member alike.
- Auth changes are admin-only and checked at apply time; passwords are hashed with bcrypt before the
  change is proposed, so applying stays fast and deterministic.

Other services call `check_admin()` (admin-only RPCs) or `authorize()` (any authenticated call) from
their gateway handlers; see ARCHITECTURE.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import bcrypt

from etcdpy.app.config import Config
from etcdpy.app.server.auth_tokens import SimpleTokens, TokenProvider, new_prefix, new_token_provider
from etcdpy.app.server.commands import AuthRequest, Command, Stamped
from etcdpy.storage import errors as e
from etcdpy.storage.auth_store import READ, ROOT, AuthStore, Permission
from etcdpy.storage.kv_types import DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest
from etcdpy.storage.lessor import LeaseRevokeRequest
from etcdpy.storage.mvcc import MVCCStore

log = logging.getLogger("etcdpy.auth")

# The raw Authorization value of the request being served (None: the request carried none).
request_token: ContextVar[str | None] = ContextVar("etcdpy_request_token", default=None)
# The CommonName of the request's verified client certificate: set only for requests on an https client
# listener with --client-cert-auth (app/tls_scope.py puts it in the ASGI scope; the gateway sets this).
request_cert_cn: ContextVar[str | None] = ContextVar("etcdpy_request_cert_cn", default=None)

TOKEN_WAIT_S = 2.0  # how long a request waits for this member to apply its token's authenticate entry
TOKEN_WAIT_MAX_AHEAD = 10_000  # a token index this far beyond the applied index is not waited for
BCRYPT_MAX_BYTES = 72  # bcrypt reads no further; Go's bcrypt of etcd's era truncated silently too
AUTHENTICATE_RETRIES = 3

# Changes that need the root role (etcd's needAdminPermission); authenticate needs none.
_ADMIN_OPS = frozenset({
    "enable", "disable", "user_add", "user_delete", "user_changepw", "user_grant", "user_revoke",
    "role_add", "role_delete", "role_grant", "role_revoke",
})
# Changes after which a user's tokens must go (simple tokens; JWTs fail on the revision instead).
_DROPS_TOKENS = frozenset({"user_delete", "user_changepw"})


@dataclass(frozen=True, slots=True)
class AuthInfo:
    username: str
    revision: int


def strip_bearer(value: str) -> str:
    """The token in an Authorization value: etcd's gateway passes it bare; `Bearer <token>` is accepted."""
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return value


def _pw(password: str | bytes) -> bytes:
    raw = password.encode() if isinstance(password, str) else password
    return raw[:BCRYPT_MAX_BYTES]


class AuthService:
    def __init__(self, mvcc: MVCCStore, config: Config,
                 propose: Callable[[Command], Awaitable[Any]],
                 barrier: Callable[[], Awaitable[None]]) -> None:
        self.store = AuthStore(mvcc)
        self.tokens: TokenProvider = new_token_provider(config.auth_token, float(config.auth_token_ttl))
        self.bcrypt_cost = config.bcrypt_cost
        self.client_cert_auth = config.client_cert_auth
        self._propose = propose
        self._barrier = barrier
        # Called after every applied auth change (open watch streams re-check their watchers).
        self.listeners: list[Callable[[], None]] = []
        self._token_waiters: list[tuple[int, asyncio.Future[None]]] = []

    # ------------------------------------------------------------------ simple tokens and apply progress

    def on_applied(self, index: int) -> None:
        """The server applied entries up to `index` (wakes requests waiting for their token)."""
        if not self._token_waiters:
            return
        waiting = []
        for at, future in self._token_waiters:
            if at <= index:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((at, future))
        self._token_waiters = waiting

    async def await_token(self, header: str | None) -> None:
        """Before a request is served: if it carries a simple token this member has not applied yet
        (issued through another member a moment ago), wait for that entry, as etcd does."""
        if header is None or not isinstance(self.tokens, SimpleTokens):
            return
        token = strip_bearer(header)
        if token in self.tokens.tokens:
            return
        _, dot, tail = token.rpartition(".")
        if not dot or not tail.isdigit():
            return
        index, applied = int(tail), self.store.store.applied_index
        if index <= applied or index > applied + TOKEN_WAIT_MAX_AHEAD:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._token_waiters.append((index, future))
        try:
            await asyncio.wait_for(future, TOKEN_WAIT_S)
        except TimeoutError:
            pass  # the token stays unknown and the request is refused as etcd refuses it

    def reload(self) -> None:
        """A snapshot replaced the database: re-read the state; tokens issued before stay valid only
        if their user still exists unchanged (simple tokens are dropped, as a restart drops them)."""
        self.store.reload()
        self.tokens.clear()
        self._changed()

    # ------------------------------------------------------------------ who is asking

    def info(self) -> AuthInfo | None:
        """The caller, from the request's token; None without one. Raises "invalid auth token".

        Without a token and with --client-cert-auth, the verified client certificate's CommonName is the
        user, at the current auth revision (etcd's AuthInfoFromCtx, then AuthInfoFromTLS); a token, even
        an invalid one, always wins over the certificate."""
        header = request_token.get()
        if header is None:
            cn = request_cert_cn.get()
            if cn is not None and self.client_cert_auth:
                return AuthInfo(cn, self.store.revision)
            return None
        found = self.tokens.info(strip_bearer(header))
        if found is None:
            raise e.InvalidAuthTokenError()
        username, revision = found
        return AuthInfo(username, self.store.revision if revision is None else revision)

    def authorize(self) -> AuthInfo | None:
        """For calls etcd lets any caller make but whose token it still validates (lease grant,
        compaction): refuse a bad token, return the caller."""
        return self.info()

    def check_admin(self) -> AuthInfo | None:
        """For admin-only calls (cluster membership changes, maintenance, auth): the caller must have
        the root role while auth is enabled. Raises etcd's errors."""
        ai = self.info()
        self.store.check_admin(ai.username if ai else "")
        return ai

    def wrap(self, cmd: Command, always: bool = False) -> Command:
        """The command as proposed: stamped with the caller when auth is on (or `always`)."""
        ai = self.info()
        if ai is None and not (always or self.store.enabled):
            return cmd
        return Stamped(ai.username if ai else "", ai.revision if ai else 0, cmd)

    # ------------------------------------------------------------------ read checks (at serve time)

    def check_read(self, key: bytes, range_end: bytes) -> AuthInfo | None:
        ai = self.info()
        if self.store.enabled:
            self.store.check_range(ai.username if ai else "", ai.revision if ai else 0, key, range_end)
        return ai

    def check_read_txn(self, req: TxnRequest) -> AuthInfo | None:
        ai = self.info()
        if self.store.enabled:
            check_txn(self.store, ai.username if ai else "", ai.revision if ai else 0, req)
        return ai

    def check_fresh(self, ai: AuthInfo | None) -> None:
        """etcd's doSerialize re-check: the auth state must not have moved while the read ran."""
        if ai is not None and self.store.enabled and ai.revision != self.store.revision:
            raise e.AuthOldRevisionError()

    def permits_read(self, ai: AuthInfo | None, key: bytes, range_end: bytes) -> bool:
        """Whether a watcher of this range may go on (re-checked after every auth change)."""
        if not self.store.enabled:
            return True
        if ai is None:
            return False
        user = self.store.users.get(ai.username)
        if user is None:
            return False
        try:
            # Open streams follow the current state: the revision of the stream's token is not held
            # against it, the user's current permissions are.
            self.store.check_op(ai.username, self.store.revision, key, range_end, READ)
        except e.AuthError:
            return False
        return True

    # ------------------------------------------------------------------ applying (from the applier)

    def apply(self, index: int, cmd: AuthRequest, username: str | None) -> Any:
        """Apply one auth command; `username` is the stamped caller (None: unstamped)."""
        store = self.store
        if cmd.op in _ADMIN_OPS:
            store.check_admin(username or "")
        args = cmd.args
        result: Any = None
        if cmd.op == "authenticate":
            result = self._apply_authenticate(index, args[0], args[1])
        elif cmd.op == "enable":
            store.enable(index)
        elif cmd.op == "disable":
            store.disable(index)
            self.tokens.clear()
        elif cmd.op == "user_add":
            store.user_add(index, args[0], args[1], args[2])
        elif cmd.op == "user_delete":
            store.user_delete(index, args[0])
        elif cmd.op == "user_changepw":
            store.user_change_password(index, args[0], args[1])
        elif cmd.op == "user_grant":
            store.user_grant_role(index, args[0], args[1])
        elif cmd.op == "user_revoke":
            store.user_revoke_role(index, args[0], args[1])
        elif cmd.op == "role_add":
            store.role_add(index, args[0])
        elif cmd.op == "role_delete":
            store.role_delete(index, args[0])
        elif cmd.op == "role_grant":
            store.role_grant_permission(index, args[0], Permission(*args[1]) if args[1] else None)
        elif cmd.op == "role_revoke":
            store.role_revoke_permission(index, args[0], args[1], args[2])
        else:
            raise ValueError(f"unknown auth command {cmd.op!r}")
        if cmd.op in _DROPS_TOKENS:
            self.tokens.invalidate_user(args[0])
        if cmd.op != "authenticate":
            self._changed()
        return result

    def _apply_authenticate(self, index: int, name: str, prefix: str) -> str:
        if not self.store.enabled:
            raise e.AuthNotEnabledError()
        user = self.store.users.get(name)
        if user is None or user.no_password:
            raise e.AuthFailedError()
        token = self.tokens.assign(prefix, index, name, self.store.revision)
        self.store.store.record_applied(index)
        return token

    def _changed(self) -> None:
        for listener in list(self.listeners):
            listener()

    # ------------------------------------------------------------------ the auth RPCs

    async def _hash(self, password: str) -> bytes:
        # bcrypt costs tens of milliseconds or more: keep it off the event loop.
        return await asyncio.to_thread(bcrypt.hashpw, _pw(password), bcrypt.gensalt(self.bcrypt_cost))

    async def _change(self, op: str, *args: Any) -> None:
        await self._propose(self.wrap(AuthRequest(op, list(args)), always=True))

    async def authenticate(self, name: str, password: str) -> str:
        """etcd's Authenticate: check the password here, then put the token through the log; retried
        if the auth state moved between the check and the apply (the password may have changed)."""
        await self._barrier()
        for _ in range(AUTHENTICATE_RETRIES):
            checked = await self._check_password(name, password)
            self.info()  # a bad token on the request is refused, as on every proposal
            token: str = await self._propose(AuthRequest("authenticate", [name, new_prefix()]))
            if checked == self.store.revision:
                return token
            log.info("auth revision moved while authenticating %s; retrying", name)
        raise e.AuthOldRevisionError()

    async def _check_password(self, name: str, password: str) -> int:
        store = self.store
        if not store.enabled:
            raise e.AuthNotEnabledError()
        user = store.users.get(name)
        if user is None or user.no_password:
            raise e.AuthFailedError()
        revision = store.revision
        hashed = user.password
        ok = await asyncio.to_thread(_matches, password, hashed)
        if not ok:
            raise e.AuthFailedError()
        return revision

    async def enable(self) -> None:
        await self._change("enable")

    async def disable(self) -> None:
        await self._change("disable")

    async def user_add(self, name: str, password: str, no_password: bool) -> None:
        hashed = b"" if no_password or not name else await self._hash(password)
        await self._change("user_add", name, hashed, no_password)

    async def user_delete(self, name: str) -> None:
        await self._change("user_delete", name)

    async def user_change_password(self, name: str, password: str) -> None:
        await self._change("user_changepw", name, await self._hash(password))

    async def user_grant_role(self, user: str, role: str) -> None:
        await self._change("user_grant", user, role)

    async def user_revoke_role(self, name: str, role: str) -> None:
        await self._change("user_revoke", name, role)

    async def role_add(self, name: str) -> None:
        await self._change("role_add", name)

    async def role_delete(self, name: str) -> None:
        await self._change("role_delete", name)

    async def role_grant_permission(self, name: str, perm: Permission | None) -> None:
        packed = [perm.perm_type, perm.key, perm.range_end] if perm is not None else None
        await self._change("role_grant", name, packed)

    async def role_revoke_permission(self, name: str, key: bytes, range_end: bytes) -> None:
        await self._change("role_revoke", name, key, range_end)

    async def _read(self, allowed: Callable[[AuthInfo | None], bool] = lambda ai: False) -> None:
        """Auth reads answer after everything committed before them is applied (etcd puts them through
        the log); admin-only unless `allowed` lets the caller see its own user or role."""
        ai = self.info()
        await self._barrier()
        try:
            self.store.check_admin(ai.username if ai else "")
        except e.AuthError:
            if not allowed(ai):
                raise

    async def user_get(self, name: str) -> list[str]:
        await self._read(lambda ai: ai is not None and ai.username == name)
        return list(self.store.user_get(name).roles)

    async def user_list(self) -> list[str]:
        await self._read()
        return self.store.user_names()

    async def role_get(self, name: str) -> list[Permission]:
        await self._read(lambda ai: ai is not None and self.store.has_role(ai.username, name))
        if name == ROOT and name not in self.store.roles:
            raise e.RoleNotFoundError()
        return list(self.store.role_get(name).perms)

    async def role_list(self) -> list[str]:
        await self._read()
        return self.store.role_names()

    async def status(self) -> tuple[bool, int]:
        """etcd 3.5's AuthStatus: (enabled, auth revision); any caller may ask."""
        self.info()
        await self._barrier()
        return self.store.enabled, self.store.revision


def _matches(password: str, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(_pw(password), hashed)
    except ValueError:  # not a bcrypt hash (a user added without a password hash)
        return False


# ---------------------------------------------------------------------- permission checks of commands


def check_txn(store: AuthStore, user: str, rev: int, req: TxnRequest) -> None:
    """Every compare and every op of both branches, nested txns included (etcd 3.4 skipped nested
    ones, which let a user write outside its permissions; 3.5 checks them)."""
    for c in req.compare:
        store.check_range(user, rev, c.key, c.range_end)
    for op in (*req.success, *req.failure):
        if isinstance(op, RangeRequest):
            store.check_range(user, rev, op.key, op.range_end)
        elif isinstance(op, PutRequest):
            store.check_write(user, rev, op.key)
            if op.prev_kv:
                store.check_range(user, rev, op.key)
        elif isinstance(op, DeleteRangeRequest):
            if op.prev_kv:
                store.check_range(user, rev, op.key, op.range_end)
            store.check_write(user, rev, op.key, op.range_end)
        elif isinstance(op, TxnRequest):
            check_txn(store, user, rev, op)


def check_command(store: AuthStore, user: str, rev: int, cmd: Any,
                  attached_keys: Callable[[int], list[bytes]]) -> None:
    """The apply-time check of a stamped client command (etcd's authApplierV3)."""
    if isinstance(cmd, PutRequest):
        store.check_write(user, rev, cmd.key)
        if cmd.lease:
            # A user who could not revoke the lease must not attach keys to it either.
            for key in attached_keys(cmd.lease):
                store.check_write(user, rev, key)
        if cmd.prev_kv:
            store.check_range(user, rev, cmd.key)
    elif isinstance(cmd, DeleteRangeRequest):
        store.check_write(user, rev, cmd.key, cmd.range_end)
        if cmd.prev_kv:
            store.check_range(user, rev, cmd.key, cmd.range_end)
    elif isinstance(cmd, TxnRequest):
        check_txn(store, user, rev, cmd)
    elif isinstance(cmd, LeaseRevokeRequest):
        for key in attached_keys(cmd.ID):
            store.check_write(user, rev, key)
