"""Maintenance service cases: alarms and what they refuse, defragment, request errors.

Every case that raises an alarm ends by deactivating it (the servers are shared by the session). The
alarms name member 5 rather than the server's own id, which differs between the two servers; etcd
accepts any member id. Only one alarm type is ever listed unfiltered at a time: etcd lists several
types in Go map order, which is random. Hash values, sizes and etcd 3.5's hashkv and downgrade (404 in
etcd 3.4) cannot be compared byte for byte; tests/test_maintenance_diff.py compares their shapes.
"""

from __future__ import annotations

from tests.conformance.harness import Keys, Registry, Step
from tests.conformance.steps import delete, grant, lease_id, op_put, op_range, post, put, rng, txn

ALARM = "/v3/maintenance/alarm"


def alarm(action: str, kind: str | None = None, member: str | None = "5", expect: int = 200) -> Step:
    body: dict[str, str] = {"action": action}
    if member is not None:
        body["memberID"] = member
    if kind is not None:
        body["alarm"] = kind
    return post(ALARM, body, expect=expect)


def health(expect: int) -> Step:
    return Step("/health", None, method="GET", content_type=None, expect=expect)


def nospace_cycle(k: Keys) -> list[Step]:
    lease = lease_id(k)
    return [
        put(k("a"), "1"),
        alarm("GET", member=None),
        alarm("ACTIVATE", "NOSPACE"),
        alarm("GET", member=None),
        health(503),
        put(k("b"), "2", expect=429),
        txn(success=[op_put(k("c"), "3")], expect=429),
        txn(success=[op_range(k("a"))]),
        post("/v3/lease/grant", {"TTL": 600, "ID": lease}, expect=429),
        rng(k("a")),
        delete(k("a")),
        post("/v3/kv/compaction", {"revision": "${rev+1}"}),
        alarm("DEACTIVATE", "NOSPACE"),
        alarm("GET", member=None),
        health(200),
        put(k("b"), "2"),
    ]


def corrupt_cycle(k: Keys) -> list[Step]:
    lease = lease_id(k)
    return [
        put(k("a"), "1"),
        grant(lease),
        alarm("ACTIVATE", "CORRUPT"),
        alarm("GET", "CORRUPT", member=None),
        health(503),
        put(k("b"), "2", expect=500),
        delete(k("a"), expect=500),
        post("/v3/kv/compaction", {"revision": "${rev+1}"}, expect=500),
        post("/v3/lease/grant", {"TTL": 600, "ID": lease + 1}, expect=500),
        post("/v3/lease/revoke", {"ID": lease}, expect=500),
        rng(k("a")),
        rng(k("a"), serializable=True),
        txn(success=[op_range(k("a"))]),
        alarm("DEACTIVATE", "CORRUPT"),
        alarm("DEACTIVATE", "CORRUPT"),
        health(200),
        post("/v3/lease/revoke", {"ID": lease}),
    ]


def register(reg: Registry) -> None:
    reg.add("alarm-nospace-cycle", nospace_cycle,
            "NOSPACE refuses puts, txns with puts and lease grants; reads, deletes and compaction go on")
    reg.add("alarm-corrupt-cycle", corrupt_cycle,
            "CORRUPT refuses every change, reads go on; deactivating twice answers {} the second time")
    reg.add("alarm-get-filtered", lambda k: [
        alarm("ACTIVATE", "NOSPACE", member="7"),
        alarm("GET", "CORRUPT", member=None),
        alarm("GET", "NOSPACE", member=None),
        alarm("GET", member="9"),
        alarm("DEACTIVATE", "NOSPACE", member="7"),
    ], "GET filters by type, not by member")
    reg.add("alarm-none-type", lambda k: [
        alarm("ACTIVATE", "NONE", member="6"),
        alarm("GET", member=None),
        alarm("DEACTIVATE", "NONE", member="6"),
    ], "etcd 3.4 records an alarm of type NONE (the type is then omitted)")
    reg.add("alarm-bad-enums", lambda k: [
        post(ALARM, {"action": "BOGUS"}, expect=400),
        post(ALARM, {"action": "GET", "alarm": "BOGUS"}, expect=400),
        post(ALARM, {"action": "GET", "memberID": "x"}, expect=400),
        post(ALARM, {"alarm": 7}),
        post(ALARM, "x", expect=400),
    ], "bad enum names and numbers as jsonpb reports them; an unknown alarm number lists nothing")
    reg.add("defragment", lambda k: [
        put(k("a"), "1"),
        post("/v3/maintenance/defragment", {}),
        post("/v3/maintenance/defragment", "x", expect=400),
        rng(k("a")),
    ], "defragment answers {} (no header) and keeps the data")
    reg.add("maintenance-methods", lambda k: [
        Step("/v3/maintenance/snapshot", None, method="GET", content_type=None, expect=405),
        Step("/v3/maintenance/alarm", None, method="GET", content_type=None, expect=405),
        Step("/v3/maintenance/hash", "x", expect=400),
    ], "only POST is routed; a bad body is a decode error")
