"""Users, roles and key permissions, the enabled flag and the auth revision (etcd's auth store).

Pure state, no HTTP, no tokens, no password hashing: the server hashes passwords before proposing and
hands this store the hash, so applying a log entry is fast and deterministic. Every change is written
to MVCC's `auth` column family in the same RocksDB batch as the applied index, so a replay after a
crash is a no-op and every member holds the same state for the same log.

Family layout (values msgpack):

| key               | value                                   |
| ----------------- | --------------------------------------- |
| `enabled`         | `b"\\x01"` or `b"\\x00"`                 |
| `revision`        | u64, big-endian: the auth revision       |
| `user/<name>`     | `[password hash, [roles], no_password]` |
| `role/<name>`     | `[[perm type, key, range_end], ...]`    |

Permission checks follow etcd's range_perm_cache.go: a user's permissions, over all its roles, are
merged into READ and WRITE interval sets; a single key is permitted when some interval contains it, a
range when the merged intervals cover it without a gap. A range end of `\\0` means "to the end of the
keyspace", both in a permission and in a request.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field

import msgpack
from rocksdict import WriteBatch

from etcdpy.storage import errors as e
from etcdpy.storage.mvcc import MVCCStore

READ, WRITE, READWRITE = 0, 1, 2
PERM_NAMES = ("READ", "WRITE", "READWRITE")
ROOT = "root"  # the root user and the root role share the name

_ENABLED = b"enabled"
_REVISION = b"revision"
_USER = b"user/"
_ROLE = b"role/"
_U64 = struct.Struct(">Q")
INF = None  # the open end of an interval (a range end of "\0")


@dataclass
class Permission:
    perm_type: int
    key: bytes
    range_end: bytes = b""


@dataclass
class User:
    name: str
    password: bytes = b""  # the bcrypt hash (empty for a no_password user)
    roles: list[str] = field(default_factory=list)
    no_password: bool = False


@dataclass
class Role:
    name: str
    perms: list[Permission] = field(default_factory=list)


Interval = tuple[bytes, bytes | None]  # [begin, end); end None = unbounded


def _interval(key: bytes, range_end: bytes) -> Interval:
    """A permission's or a request's key interval; an empty range end is the key alone."""
    if not range_end:
        return key, key + b"\x00"
    if range_end == b"\x00":
        return key, INF
    return key, range_end


def _merge(intervals: list[Interval]) -> list[Interval]:
    """Sort and join overlapping or touching intervals (empty ones dropped)."""
    live = sorted((b, en) for b, en in intervals if en is None or en > b)
    out: list[Interval] = []
    for begin, end in live:
        if out:
            last_begin, last_end = out[-1]
            if last_end is None or begin <= last_end:
                if last_end is not None and (end is None or end > last_end):
                    out[-1] = (last_begin, end)
                continue
        out.append((begin, end))
    return out


class MergedPerms:
    """One user's READ and WRITE permissions as sorted, disjoint intervals."""

    def __init__(self, perms: list[Permission]) -> None:
        read: list[Interval] = []
        write: list[Interval] = []
        for p in perms:
            ivl = _interval(p.key, p.range_end)
            if p.perm_type in (READ, READWRITE):
                read.append(ivl)
            if p.perm_type in (WRITE, READWRITE):
                write.append(ivl)
        self.read = _merge(read)
        self.write = _merge(write)
        self.read_begins = [b for b, _ in self.read]
        self.write_begins = [b for b, _ in self.write]

    def covers(self, perm_type: int, key: bytes, range_end: bytes) -> bool:
        """Whether one merged interval holds the whole request range (merged ones have no gaps)."""
        if perm_type == READ:
            intervals, begins = self.read, self.read_begins
        else:
            intervals, begins = self.write, self.write_begins
        begin, end = _interval(key, range_end)
        i = bisect.bisect_right(begins, begin) - 1
        if i < 0:
            return False
        ivl_end = intervals[i][1]
        if ivl_end is None:
            return True
        return end is not None and end <= ivl_end


class AuthStore:
    """The auth state of one member, as the log has decided it."""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.enabled = False
        self.revision = 0
        self.users: dict[str, User] = {}
        self.roles: dict[str, Role] = {}
        self._merged: dict[str, MergedPerms] = {}
        self.reload()

    def reload(self) -> None:
        """Read the persisted state (at start-up, and after a snapshot replaced the database)."""
        cf = self.store.auth
        self.enabled = cf.get(_ENABLED) == b"\x01"
        rev = cf.get(_REVISION)
        self.revision = _U64.unpack(rev)[0] if rev else 0
        self.users, self.roles = {}, {}
        it = cf.iter()
        it.seek(_ROLE)
        while it.valid() and it.key().startswith(_ROLE):
            name = it.key()[len(_ROLE):].decode()
            self.roles[name] = Role(name, [Permission(*p) for p in msgpack.unpackb(it.value())])
            it.next()
        it.seek(_USER)
        while it.valid() and it.key().startswith(_USER):
            name = it.key()[len(_USER):].decode()
            password, roles, no_password = msgpack.unpackb(it.value())
            self.users[name] = User(name, password, list(roles), bool(no_password))
            it.next()
        self._merged.clear()

    # ------------------------------------------------------------------ persistence

    def _commit(self, index: int, *, users: tuple[str, ...] = (), roles: tuple[str, ...] = (),
                bump: bool = True) -> None:
        """Write the named users and roles (deleted ones are removed) with the applied index; a change
        that can alter what someone may do moves the auth revision."""
        h = self.store.handles["auth"]
        batch = WriteBatch(raw_mode=True)
        for name in users:
            user = self.users.get(name)
            if user is None:
                batch.delete(_USER + name.encode(), h)
            else:
                batch.put(_USER + name.encode(),
                          msgpack.packb([user.password, user.roles, user.no_password]), h)
        for name in roles:
            role = self.roles.get(name)
            if role is None:
                batch.delete(_ROLE + name.encode(), h)
            else:
                batch.put(_ROLE + name.encode(),
                          msgpack.packb([[p.perm_type, p.key, p.range_end] for p in role.perms]), h)
        batch.put(_ENABLED, b"\x01" if self.enabled else b"\x00", h)
        if bump:
            self.revision += 1
            batch.put(_REVISION, _U64.pack(self.revision), h)
        self.store.commit_batch(batch, index, self.store.current_revision)
        self._merged.clear()

    # ------------------------------------------------------------------ changes (applied from the log)

    def enable(self, index: int) -> None:
        if self.enabled:
            self.store.record_applied(index)
            return
        root = self.users.get(ROOT)
        if root is None:
            raise e.RootUserNotExistError()
        if ROOT not in root.roles:
            raise e.RootRoleNotExistError()
        self.enabled = True
        self._commit(index, bump=False)

    def disable(self, index: int) -> None:
        if not self.enabled:
            self.store.record_applied(index)
            return
        self.enabled = False
        self._commit(index)

    def user_add(self, index: int, name: str, password_hash: bytes, no_password: bool) -> None:
        if not name:
            raise e.UserEmptyError()
        if name in self.users:
            raise e.UserAlreadyExistError()
        self.users[name] = User(name, b"" if no_password else password_hash, [], no_password)
        self._commit(index, users=(name,))

    def user_delete(self, index: int, name: str) -> None:
        if self.enabled and name == ROOT:
            raise e.InvalidAuthMgmtError()
        if name not in self.users:
            raise e.UserNotFoundError()
        del self.users[name]
        self._commit(index, users=(name,))

    def user_change_password(self, index: int, name: str, password_hash: bytes) -> None:
        user = self.users.get(name)
        if user is None:
            raise e.UserNotFoundError()
        user.password = password_hash
        self._commit(index, users=(name,))

    def user_grant_role(self, index: int, name: str, role: str) -> None:
        user = self.users.get(name)
        if user is None:
            raise e.UserNotFoundError()
        if role != ROOT and role not in self.roles:
            raise e.RoleNotFoundError()
        if role in user.roles:
            self.store.record_applied(index)  # etcd answers success and changes nothing
            return
        bisect.insort(user.roles, role)
        self._commit(index, users=(name,))

    def user_revoke_role(self, index: int, name: str, role: str) -> None:
        if self.enabled and name == ROOT and role == ROOT:
            raise e.InvalidAuthMgmtError()
        user = self.users.get(name)
        if user is None:
            raise e.UserNotFoundError()
        if role not in user.roles:
            raise e.RoleNotGrantedError()
        user.roles.remove(role)
        self._commit(index, users=(name,))

    def role_add(self, index: int, name: str) -> None:
        if not name:
            raise e.RoleEmptyError()
        if name in self.roles:
            raise e.RoleAlreadyExistError()
        self.roles[name] = Role(name)
        self._commit(index, roles=(name,))

    def role_delete(self, index: int, name: str) -> None:
        if self.enabled and name == ROOT:
            raise e.InvalidAuthMgmtError()
        if name not in self.roles:
            raise e.RoleNotFoundError()
        del self.roles[name]
        # The role is taken from every user that has it, as etcd does (a new role of the same name
        # must not be granted to them silently).
        touched = tuple(u.name for u in self.users.values() if name in u.roles)
        for user_name in touched:
            self.users[user_name].roles.remove(name)
        self._commit(index, users=touched, roles=(name,))

    def role_grant_permission(self, index: int, name: str, perm: Permission | None) -> None:
        role = self.roles.get(name)
        if role is None:
            raise e.RoleNotFoundError()
        if perm is None:
            raise e.PermissionNotGivenError()
        for existing in role.perms:
            if existing.key == perm.key and existing.range_end == perm.range_end:
                existing.perm_type = perm.perm_type
                break
        else:
            # Kept sorted by key as etcd lists them; equal keys keep their grant order.
            at = bisect.bisect_right([p.key for p in role.perms], perm.key)
            role.perms.insert(at, perm)
        self._commit(index, roles=(name,))

    def role_revoke_permission(self, index: int, name: str, key: bytes, range_end: bytes) -> None:
        role = self.roles.get(name)
        if role is None:
            raise e.RoleNotFoundError()
        kept = [p for p in role.perms if p.key != key or p.range_end != range_end]
        if len(kept) == len(role.perms):
            raise e.PermissionNotGrantedError()
        role.perms = kept
        self._commit(index, roles=(name,))

    # ------------------------------------------------------------------ reads

    def user_get(self, name: str) -> User:
        user = self.users.get(name)
        if user is None:
            raise e.UserNotFoundError()
        return user

    def role_get(self, name: str) -> Role:
        role = self.roles.get(name)
        if role is None:
            raise e.RoleNotFoundError()
        return role

    def user_names(self) -> list[str]:
        return sorted(self.users, key=str.encode)

    def role_names(self) -> list[str]:
        return sorted(self.roles, key=str.encode)

    def has_role(self, user: str, role: str) -> bool:
        found = self.users.get(user)
        return found is not None and role in found.roles

    # ------------------------------------------------------------------ permission checks

    def check_admin(self, username: str) -> None:
        """etcd's IsAdminPermitted: with auth on, only a user with the root role."""
        if not self.enabled:
            return
        if not username:
            raise e.UserEmptyError()
        user = self.users.get(username)
        if user is None:
            raise e.UserNotFoundError()
        if ROOT not in user.roles:
            raise e.PermissionDeniedError()

    def check_op(self, username: str, revision: int, key: bytes, range_end: bytes, perm_type: int) -> None:
        """etcd's isOpPermitted: the user (authorised at `revision`) may READ or WRITE the range."""
        if not self.enabled:
            return
        if revision == 0:
            raise e.UserEmptyError()
        if revision < self.revision:
            raise e.AuthOldRevisionError()
        user = self.users.get(username)
        if user is None:
            raise e.PermissionDeniedError()
        if ROOT in user.roles:
            return
        merged = self._merged.get(username)
        if merged is None:
            perms = [p for r in user.roles if (role := self.roles.get(r)) is not None for p in role.perms]
            merged = self._merged[username] = MergedPerms(perms)
        if not merged.covers(perm_type, key, range_end):
            raise e.PermissionDeniedError()

    def check_range(self, username: str, revision: int, key: bytes, range_end: bytes = b"") -> None:
        self.check_op(username, revision, key, range_end, READ)

    def check_write(self, username: str, revision: int, key: bytes, range_end: bytes = b"") -> None:
        self.check_op(username, revision, key, range_end, WRITE)
