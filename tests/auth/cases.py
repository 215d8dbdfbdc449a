"""Auth scenarios sent to real etcd and to etcdpy (tests/auth/test_auth_conformance.py).

Each function returns the steps of one scenario; every scenario starts from a server without auth,
users, roles or keys. Root's password is always `toor` (the runner's reset logs in with it).

Where etcdpy answers differently on purpose, the request is not here but in test_auth_bypass.py:
etcd 3.4 lets a nested txn write outside the user's permissions and checks a from-key watch on its
first key only (both fixed in later etcd), and refuses `Authorization: Bearer <token>`.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.auth.scenario import Step, b64, call, login

Scenario = Callable[[], list[Step]]

A = "/v3/auth"
FOO, FOO_END = b64("foo"), b64("fop")  # the prefix foo
READ, WRITE, READWRITE = "READ", "WRITE", "READWRITE"


def perm(key: str, end: str | None = None, kind: str | int = READWRITE) -> dict[str, object]:
    p: dict[str, object] = {"permType": kind, "key": key}
    if end is not None:
        p["range_end"] = end
    return p


def setup_root(enable: bool = True) -> list[Step]:
    steps = [
        call(f"{A}/user/add", {"name": "root", "password": "toor"}),
        call(f"{A}/role/add", {"name": "root"}),
        call(f"{A}/user/grant", {"user": "root", "role": "root"}),
    ]
    if enable:
        steps += [call(f"{A}/enable"), login("root", "toor")]
    return steps


def management() -> list[Step]:
    """Users and roles with auth disabled: every call and its error answers."""
    return [
        call(f"{A}/enable"),
        call(f"{A}/disable"),
        call(f"{A}/user/add"),
        call(f"{A}/user/add", {"name": "u1", "password": "p1"}),
        call(f"{A}/user/add", {"name": "u1", "password": "p2"}),
        call(f"{A}/user/add", {"name": "u0"}),
        call(f"{A}/user/add", {"name": "ünï cødé", "password": "x"}),
        call(f"{A}/user/get", {"name": "u1"}),
        call(f"{A}/user/get", {"name": "nobody"}),
        call(f"{A}/user/get"),
        call(f"{A}/user/list"),
        call(f"{A}/role/add"),
        call(f"{A}/role/add", {"name": "r1"}),
        call(f"{A}/role/add", {"name": "r1"}),
        call(f"{A}/role/add", {"name": "r0"}),
        call(f"{A}/role/get", {"role": "r1"}),
        call(f"{A}/role/get", {"role": "nope"}),
        call(f"{A}/role/get"),
        call(f"{A}/role/list"),
        call(f"{A}/role/grant", {"name": "r1", "perm": perm(FOO, FOO_END)}),
        call(f"{A}/role/grant", {"name": "r1", "perm": perm(b64("bar"), kind=READ)}),
        call(f"{A}/role/grant", {"name": "r1", "perm": perm(b64("baz"), "AA==", kind=1)}),
        call(f"{A}/role/grant", {"name": "r1", "perm": perm(b64("bar"), kind=WRITE)}),
        call(f"{A}/role/grant", {"name": "r1", "perm": perm(b64("a"), b64("b"), kind=WRITE)}),
        call(f"{A}/role/grant", {"name": "nope", "perm": perm(b64("a"))}),
        call(f"{A}/role/grant", {"name": "r1", "perm": {"key": b64("k"), "permType": "READ"}}),
        call(f"{A}/role/get", {"role": "r1"}),
        call(f"{A}/role/revoke", {"role": "r1", "key": b64("a"), "range_end": b64("b")}),
        call(f"{A}/role/revoke", {"role": "r1", "key": b64("a"), "range_end": b64("b")}),
        call(f"{A}/role/revoke", {"role": "r1", "key": b64("a")}),
        call(f"{A}/role/revoke", {"role": "nope", "key": b64("a")}),
        call(f"{A}/role/revoke", {"role": "r1"}),
        call(f"{A}/role/get", {"role": "r1"}),
        call(f"{A}/user/grant", {"user": "u1", "role": "r1"}),
        call(f"{A}/user/grant", {"user": "u1", "role": "r1"}),
        call(f"{A}/user/grant", {"user": "u1", "role": "r0"}),
        call(f"{A}/user/grant", {"user": "u1", "role": "nope"}),
        call(f"{A}/user/grant", {"user": "nobody", "role": "r1"}),
        call(f"{A}/user/grant", {"user": "u1", "role": "root"}),
        call(f"{A}/user/get", {"name": "u1"}),
        call(f"{A}/user/revoke", {"name": "u1", "role": "root"}),
        call(f"{A}/user/revoke", {"name": "u1", "role": "root"}),
        call(f"{A}/user/revoke", {"name": "nobody", "role": "r1"}),
        call(f"{A}/user/revoke", {"name": "u1", "role": "nope"}),
        call(f"{A}/user/get", {"name": "u1"}),
        call(f"{A}/user/changepw", {"name": "u1", "password": "p9"}),
        call(f"{A}/user/changepw", {"name": "nobody", "password": "p9"}),
        call(f"{A}/user/changepw", {}),
        call(f"{A}/role/delete", {"role": "r0"}),
        call(f"{A}/role/delete", {"role": "r0"}),
        call(f"{A}/role/delete", {}),
        call(f"{A}/user/get", {"name": "u1"}),
        call(f"{A}/user/delete", {"name": "u0"}),
        call(f"{A}/user/delete", {"name": "u0"}),
        call(f"{A}/user/delete", {}),
        call(f"{A}/user/list"),
        call(f"{A}/role/list"),
        call(f"{A}/authenticate", {"name": "u1", "password": "p9"}),
        call("/v3/kv/range", {"key": FOO}),
    ]


def enable_rules() -> list[Step]:
    """The root user and role rules around enable, and what changes once auth is on."""
    return [
        call(f"{A}/enable"),
        call(f"{A}/user/add", {"name": "root", "password": "toor"}),
        call(f"{A}/enable"),
        call(f"{A}/role/add", {"name": "root"}),
        call(f"{A}/role/get", {"role": "root"}),
        call(f"{A}/enable"),
        call(f"{A}/user/grant", {"user": "root", "role": "root"}),
        call(f"{A}/enable"),
        call(f"{A}/enable"),
        call(f"{A}/user/list"),
        call("/v3/kv/put", {"key": FOO, "value": b64("v")}),
        call(f"{A}/authenticate", {"name": "root", "password": "wrong"}),
        call(f"{A}/authenticate", {"name": "nobody", "password": "toor"}),
        call(f"{A}/authenticate", {}),
        login("root", "toor"),
        call("/v3/kv/put", {"key": FOO, "value": b64("v")}, as_="root"),
        call("/v3/kv/range", {"key": FOO}, as_="root"),
        Step("/v3/kv/range", {"key": FOO}, header="not-a-token"),
        Step("/v3/kv/range", {"key": FOO}, header=""),
        call(f"{A}/enable", as_="root"),
        call(f"{A}/user/list", as_="root"),
        call(f"{A}/role/get", {"role": "root"}, as_="root"),
        call(f"{A}/user/revoke", {"name": "root", "role": "root"}, as_="root"),
        call(f"{A}/user/delete", {"name": "root"}, as_="root"),
        call(f"{A}/role/delete", {"role": "root"}, as_="root"),
        call(f"{A}/role/grant", {"name": "root", "perm": perm(FOO)}, as_="root"),
        call(f"{A}/user/changepw", {"name": "root", "password": "toor"}, as_="root"),
        call("/v3/kv/range", {"key": FOO}, as_="root"),
        login("root", "toor"),
        call(f"{A}/disable"),
        call(f"{A}/disable", as_="root"),
        call("/v3/kv/range", {"key": FOO}),
        call("/v3/kv/range", {"key": FOO}, as_="root"),
        call(f"{A}/authenticate", {"name": "root", "password": "toor"}),
        call(f"{A}/disable"),
    ]


def _user_with_perms() -> list[Step]:
    return [
        *setup_root(),
        call(f"{A}/user/add", {"name": "u1", "password": "p1"}, as_="root"),
        call(f"{A}/role/add", {"name": "r1"}, as_="root"),
        call(f"{A}/role/grant", {"name": "r1", "perm": perm(FOO, FOO_END)}, as_="root"),
        call(f"{A}/role/grant", {"name": "r1", "perm": perm(b64("ro"), kind=READ)}, as_="root"),
        call(f"{A}/role/grant", {"name": "r1", "perm": perm(b64("wo"), kind=WRITE)}, as_="root"),
        call(f"{A}/role/grant", {"name": "r1", "perm": perm(b64("z"), "AA==", kind=READ)}, as_="root"),
        call(f"{A}/user/grant", {"user": "u1", "role": "r1"}, as_="root"),
        call("/v3/kv/put", {"key": b64("ro"), "value": b64("1")}, as_="root"),
        call("/v3/kv/put", {"key": b64("other"), "value": b64("1")}, as_="root"),
        login("u1", "p1"),
    ]


def kv_permissions() -> list[Step]:
    """A user limited to some ranges: each KV call inside, across and outside them."""
    put = "/v3/kv/put"
    rng = "/v3/kv/range"
    return [
        *_user_with_perms(),
        call(put, {"key": b64("foo1"), "value": b64("x")}, as_="u1"),
        call(put, {"key": b64("foo"), "value": b64("x")}, as_="u1"),
        call(put, {"key": b64("fop"), "value": b64("x")}, as_="u1"),
        call(put, {"key": b64("other"), "value": b64("x")}, as_="u1"),
        call(put, {"key": b64("ro"), "value": b64("x")}, as_="u1"),
        call(put, {"key": b64("wo"), "value": b64("x")}, as_="u1"),
        call(put, {"key": b64("wo"), "value": b64("y"), "prev_kv": True}, as_="u1"),
        call(put, {"key": b64("zz"), "value": b64("x")}, as_="u1"),
        call(rng, {"key": b64("foo1")}, as_="u1"),
        call(rng, {"key": FOO, "range_end": FOO_END}, as_="u1"),
        call(rng, {"key": FOO, "range_end": b64("foq")}, as_="u1"),
        call(rng, {"key": b64("fo"), "range_end": FOO_END}, as_="u1"),
        call(rng, {"key": b64("ro")}, as_="u1"),
        call(rng, {"key": b64("wo")}, as_="u1"),
        call(rng, {"key": b64("z"), "range_end": "AA=="}, as_="u1"),
        call(rng, {"key": b64("zzz"), "range_end": "AA=="}, as_="u1"),
        call(rng, {"key": b64("zzz"), "range_end": b64("zzzz")}, as_="u1"),
        call(rng, {"key": b64("y"), "range_end": "AA=="}, as_="u1"),
        call(rng, {"key": "AA==", "range_end": "AA=="}, as_="u1"),
        call(rng, {"key": b64("other")}, as_="u1"),
        call("/v3/kv/deleterange", {"key": b64("foo1")}, as_="u1"),
        call("/v3/kv/deleterange", {"key": b64("ro")}, as_="u1"),
        call("/v3/kv/deleterange", {"key": FOO, "range_end": b64("foq")}, as_="u1"),
        call("/v3/kv/deleterange", {"key": b64("wo"), "prev_kv": True}, as_="u1"),
        call("/v3/kv/compaction", {"revision": "${rev+1}"}, as_="u1"),
        call("/v3/kv/range", {"key": "AA==", "range_end": "AA=="}, as_="root"),
    ]


def txn_permissions() -> list[Step]:
    """Every op of a txn is checked, compares and nested txns included; a refused txn applies nothing."""
    t = "/v3/kv/txn"

    def put_op(key: str) -> dict[str, object]:
        return {"request_put": {"key": b64(key), "value": b64("t")}}

    def range_op(key: str) -> dict[str, object]:
        return {"request_range": {"key": b64(key)}}

    cmp_ro = {"key": b64("ro"), "target": "VERSION", "result": "GREATER", "version": 0}
    cmp_other = {"key": b64("other"), "target": "VERSION", "result": "GREATER", "version": 0}
    return [
        *_user_with_perms(),
        call(t, {"success": [put_op("foo1"), range_op("ro")]}, as_="u1"),
        call(t, {"success": [put_op("foo2"), put_op("other")]}, as_="u1"),
        call(t, {"success": [put_op("foo3")], "failure": [put_op("other")]}, as_="u1"),
        call(t, {"compare": [cmp_ro], "success": [range_op("foo1")]}, as_="u1"),
        call(t, {"compare": [cmp_other], "success": [range_op("foo1")]}, as_="u1"),
        call(t, {"success": [range_op("wo")]}, as_="u1"),
        call(t, {"success": [{"request_txn": {"success": [put_op("foo4")]}}]}, as_="u1"),
        call(t, {"success": [{"request_delete_range": {"key": FOO, "range_end": b64("foq")}}]}, as_="u1"),
        call(t, {"success": [{"request_delete_range": {"key": b64("foo1")}}]}, as_="u1"),
        call("/v3/kv/range", {"key": "AA==", "range_end": "AA=="}, as_="root"),
    ]


def revocation() -> list[Step]:
    """A revoked permission, a revoked role, a changed password and a deleted user take effect at once."""
    return [
        *_user_with_perms(),
        call("/v3/kv/put", {"key": b64("foo1"), "value": b64("a")}, as_="u1"),
        call(f"{A}/role/revoke", {"role": "r1", "key": FOO, "range_end": FOO_END}, as_="root"),
        call("/v3/kv/put", {"key": b64("foo1"), "value": b64("b")}, as_="u1"),
        call("/v3/kv/range", {"key": b64("ro")}, as_="u1"),
        call(f"{A}/user/revoke", {"name": "u1", "role": "r1"}, as_="root"),
        call("/v3/kv/range", {"key": b64("ro")}, as_="u1"),
        call(f"{A}/user/grant", {"user": "u1", "role": "r1"}, as_="root"),
        call("/v3/kv/range", {"key": b64("ro")}, as_="u1"),
        call(f"{A}/role/delete", {"role": "r1"}, as_="root"),
        call("/v3/kv/range", {"key": b64("ro")}, as_="u1"),
        call(f"{A}/user/get", {"name": "u1"}, as_="root"),
        call(f"{A}/role/add", {"name": "r1"}, as_="root"),
        call(f"{A}/role/grant", {"name": "r1", "perm": perm(b64("ro"), kind=READ)}, as_="root"),
        call("/v3/kv/range", {"key": b64("ro")}, as_="u1"),
        call(f"{A}/user/changepw", {"name": "u1", "password": "p2"}, as_="root"),
        call("/v3/kv/range", {"key": b64("ro")}, as_="u1"),
        call(f"{A}/authenticate", {"name": "u1", "password": "p1"}),
        login("u1", "p2"),
        call("/v3/kv/range", {"key": b64("ro")}, as_="u1"),
        call(f"{A}/user/delete", {"name": "u1"}, as_="root"),
        call("/v3/kv/range", {"key": b64("ro")}, as_="u1"),
        call(f"{A}/user/add", {"name": "u1", "password": "p2"}, as_="root"),
        call("/v3/kv/range", {"key": b64("ro")}, as_="u1"),
    ]


def admin_only() -> list[Step]:
    """What a non-root user may and may not call outside the KV space."""
    return [
        *_user_with_perms(),
        call(f"{A}/user/list", as_="u1"),
        call(f"{A}/user/get", {"name": "u1"}, as_="u1"),
        call(f"{A}/user/get", {"name": "root"}, as_="u1"),
        call(f"{A}/role/get", {"role": "r1"}, as_="u1"),
        call(f"{A}/role/get", {"role": "root"}, as_="u1"),
        call(f"{A}/role/list", as_="u1"),
        call(f"{A}/user/changepw", {"name": "u1", "password": "p1"}, as_="u1"),
        call(f"{A}/user/add", {"name": "u2", "password": "p1"}, as_="u1"),
        call(f"{A}/disable", as_="u1"),
        call(f"{A}/enable", as_="u1"),
        call("/v3/cluster/member/list", as_="u1", status_only=True),
        call("/v3/cluster/member/list", status_only=True),
        call("/v3/cluster/member/add", {"peerURLs": ["http://127.0.0.1:1"]}, as_="u1"),
        call("/v3/cluster/member/remove", {"ID": 1}, as_="u1"),
        call("/v3/lease/grant", {"ID": 77, "TTL": 60}),
        call("/v3/lease/grant", {"ID": 77, "TTL": 60}, as_="u1"),
        call("/v3/lease/timetolive", {"ID": 77}, as_="u1"),
        call("/v3/lease/leases", as_="u1"),
        call("/v3/lease/leases"),
        call("/v3/kv/put", {"key": b64("foo1"), "value": b64("l"), "lease": 77}, as_="u1"),
        call("/v3/kv/put", {"key": b64("other"), "value": b64("l"), "lease": 77}, as_="root"),
        call("/v3/lease/revoke", {"ID": 77}, as_="u1"),
        call("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "keys_only": True}, as_="root"),
        call("/v3/kv/put", {"key": b64("other"), "value": b64("m")}, as_="root"),
        call("/v3/lease/revoke", {"ID": 77}, as_="u1"),
        call("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "keys_only": True}, as_="root"),
        call("/v3/lease/revoke", {"ID": 78}),
    ]


def maintenance() -> list[Step]:
    """etcd 3.4's maintenance service: hash, defragment and snapshot are admin-only and answer the auth
    store's raw error (code Unknown; the snapshot stream in grpc-gateway's stream error shape); alarm
    and status are open to every user."""
    return [
        *_user_with_perms(),
        call("/v3/maintenance/hash", as_="u1"),
        call("/v3/maintenance/defragment", as_="u1"),
        call("/v3/maintenance/snapshot", as_="u1"),
        call("/v3/maintenance/hash", header="not-a-token"),
        call("/v3/maintenance/hash"),
        call("/v3/maintenance/alarm", {"action": "GET"}, as_="u1"),
        call("/v3/maintenance/status", as_="u1", status_only=True),
        call("/v3/maintenance/hash", as_="root", status_only=True),
        call("/v3/maintenance/defragment", as_="root"),
    ]


def beta_paths() -> list[Step]:
    """`/v3beta/` is the same service: the same checks."""
    return [
        *_user_with_perms(),
        call("/v3beta/kv/put", {"key": b64("other"), "value": b64("b")}),
        call("/v3beta/kv/put", {"key": b64("other"), "value": b64("b")}, as_="u1"),
        call("/v3beta/kv/put", {"key": b64("foo1"), "value": b64("b")}, as_="u1"),
        call("/v3beta/auth/user/list", as_="u1"),
        call("/v3beta/auth/user/list", as_="root"),
        call("/v3beta/auth/authenticate", {"name": "u1", "password": "nope"}),
    ]


def e2e_curl_auth() -> list[Step]:
    """etcd's tests/e2e v3_curl_test.go testV3CurlAuth, as requests (3.5 version: three users)."""
    steps: list[Step] = []
    users = [("root", "toor", {"no_password": False}), ("nonroot", "pass", {"no_password": False}),
             ("nooption", "pass", None)]
    for name, pw, opts in users:
        body: dict[str, object] = {"name": name, "password": pw}
        if opts is not None:
            body["options"] = opts
        steps.append(call(f"{A}/user/add", body))
    steps.append(call(f"{A}/role/add", {"name": "root"}))
    steps += [call(f"{A}/user/grant", {"user": name, "role": "root"}) for name, _, _ in users]
    steps.append(call(f"{A}/enable"))
    for i, (name, pw, _) in enumerate(users):
        put = {"key": b64(f"foo{i}"), "value": b64(f"bar{i}")}
        steps += [call("/v3/kv/put", put), login(name, pw), call("/v3/kv/put", put, as_=name)]
    return steps


ALL: list[Scenario] = [management, enable_rules, kv_permissions, txn_permissions, revocation, admin_only,
                       maintenance,
                       beta_paths, e2e_curl_auth]
