"""The auth store alone: etcd's permission range semantics, the root rules, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdpy.storage import errors as e
from etcdpy.storage.auth_store import READ, READWRITE, WRITE, AuthStore, MergedPerms, Permission
from etcdpy.storage.mvcc import MVCCStore


def merged(*perms: tuple[int, bytes, bytes]) -> MergedPerms:
    return MergedPerms([Permission(*p) for p in perms])


@pytest.mark.parametrize("key,end,ok", [
    (b"a", b"", True), (b"a\x00", b"", False), (b"b", b"", True), (b"c", b"", False),
    (b"a", b"b", False),  # the point a plus [b, c) does not cover [a, b): a\0.. is missing
    (b"b", b"c", True), (b"b", b"bz", True), (b"b", b"c\x00", False), (b"ba", b"\x00", False),
    (b"x", b"\x00", True), (b"xyz", b"\x00", True), (b"w", b"\x00", False), (b"x", b"y", True),
])
def test_ranges_are_covered_as_etcd_merges_them(key: bytes, end: bytes, ok: bool) -> None:
    m = merged((READ, b"a", b""), (READWRITE, b"b", b"bm"), (READ, b"bm", b"c"), (READ, b"x", b"\x00"))
    assert m.covers(READ, key, end) is ok
    assert m.covers(WRITE, b"b", b"bm") and not m.covers(WRITE, b"b", b"c")


def test_state_survives_reopen_and_the_root_rules(tmp_path: Path) -> None:
    mvcc = MVCCStore(str(tmp_path / "db"))
    store = AuthStore(mvcc)
    with pytest.raises(e.RootUserNotExistError):
        store.enable(1)
    store.user_add(2, "root", b"hash", False)
    with pytest.raises(e.RootRoleNotExistError):
        store.enable(3)
    store.user_grant_role(4, "root", "root")
    store.enable(5)
    store.user_add(6, "u", b"h2", False)
    store.role_add(7, "r")
    store.role_grant_permission(8, "r", Permission(WRITE, b"k", b"l"))
    store.user_grant_role(9, "u", "r")
    with pytest.raises(e.InvalidAuthMgmtError):
        store.user_delete(10, "root")
    with pytest.raises(e.PermissionDeniedError):
        store.check_range("u", store.revision, b"k")
    store.check_write("u", store.revision, b"k", b"kz")
    with pytest.raises(e.AuthOldRevisionError):
        store.check_write("u", store.revision - 1, b"k")
    revision = store.revision
    mvcc.close()

    mvcc = MVCCStore(str(tmp_path / "db"))
    again = AuthStore(mvcc)
    assert (again.enabled, again.revision, mvcc.applied_index) == (True, revision, 9)
    assert again.user_get("u").roles == ["r"] and again.user_get("u").password == b"h2"
    assert again.role_get("r").perms == [Permission(WRITE, b"k", b"l")]
    again.role_delete(11, "r")  # takes the role from its users too
    assert again.user_get("u").roles == []
    mvcc.close()
