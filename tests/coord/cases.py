"""Request/answer cases for the lock and election services that need no concurrency: every call and
every error, sent to real etcd 3.4 and to etcdpy through the conformance harness (answers compared
byte for byte after its normalisation). Lease IDs are client-chosen, so lock and leader keys
(`<name>/<lease hex>`) are the same on both servers."""

from __future__ import annotations

from tests.conformance.harness import Keys, Registry, Step, b64
from tests.conformance.steps import grant, lease_id, post, rng

LOCK = "/v3/lock"
ELECTION = "/v3/election"
REG = Registry()


def contender(k: Keys, name: str, lease: int) -> str:
    """The key etcd's lock and election services write: `<name>/<lease in hex>`, base64."""
    return b64(f"{k.raw(name)}/{lease:x}")


def lock(k: Keys, name: str, lease: int | str | None = None, expect: int = 200) -> Step:
    body: dict[str, object] = {"name": k(name)}
    if lease is not None:
        body["lease"] = lease
    return post(f"{LOCK}/lock", body, expect=expect)


def leader_key(k: Keys, name: str, lease: int, rev: str) -> dict[str, object]:
    return {"name": k(name), "key": contender(k, name, lease), "rev": rev, "lease": lease}


def _lock_cycle(k: Keys) -> list[Step]:
    lease = lease_id(k)
    key = contender(k, "l", lease)
    return [grant(lease), lock(k, "l", lease), rng(k(), range_end=k.end),
            lock(k, "l", lease),  # the same lease again: its key is reused, held at once
            post(f"{LOCK}/unlock", {"key": key}), post(f"{LOCK}/unlock", {"key": key})]


REG.add("lock-cycle", _lock_cycle, "lock, re-lock with the same lease, unlock twice")
REG.add("lock-lease-not-found", lambda k: [lock(k, "l", 12345, expect=500)],
        "a lease that does not exist: etcd's message with code Unknown")
REG.add("lock-lease-negative", lambda k: [lock(k, "l", "-1", expect=500)], "lease -1 is no lease")
REG.add("unlock-no-key", lambda k: [post(f"{LOCK}/unlock", {}, expect=500)], "key is not provided")
REG.add("unlock-absent", lambda k: [post(f"{LOCK}/unlock", {"key": k("nope")})], "no key, no revision")
REG.add("lock-bad-base64", lambda k: [post(f"{LOCK}/lock", {"name": "!!"}, expect=400)], "decode: code 3")
REG.add("lock-bad-json", lambda k: [post(f"{LOCK}/lock", "xx", expect=400)], "decode: code 3")
REG.add("lock-bad-lease-type", lambda k: [post(f"{LOCK}/lock", {"lease": "abc"}, expect=400)],
        "jsonpb's error for a bad int64")
REG.add("lock-get", lambda k: [Step(f"{LOCK}/lock", method="GET", expect=405)], "POST only")
REG.add("lock-v3beta", lambda k: [grant(lease_id(k)), post("/v3beta/lock/lock",
                                                            {"name": k("b"), "lease": lease_id(k)})],
        "the /v3beta alias")


def _election_cycle(k: Keys) -> list[Step]:
    lease = lease_id(k)
    lk = leader_key(k, "e", lease, "${rev+1}")
    return [
        grant(lease),
        post(f"{ELECTION}/leader", {"name": k("e")}, expect=500),  # election: no leader
        post(f"{ELECTION}/campaign", {"name": k("e"), "value": b64("v1"), "lease": lease}),
        post(f"{ELECTION}/leader", {"name": k("e")}),
        post(f"{ELECTION}/proclaim", {"leader": lk, "value": b64("v2")}),
        post(f"{ELECTION}/leader", {"name": k("e")}),
        # the same lease campaigns again with another value: its key is reused and the value proclaimed
        post(f"{ELECTION}/campaign", {"name": k("e"), "value": b64("v3"), "lease": lease}),
        post(f"{ELECTION}/proclaim", {"leader": {**lk, "rev": "${rev+9}"}, "value": b64("x")}, expect=500),
        post(f"{ELECTION}/resign", {"leader": {**lk, "rev": "${rev+9}"}}),  # not the leader: no-op
        post(f"{ELECTION}/resign", {"leader": lk}),
        post(f"{ELECTION}/leader", {"name": k("e")}, expect=500),
        post(f"{ELECTION}/proclaim", {"leader": lk, "value": b64("v4")}, expect=500),  # not leader
    ]


REG.add("election-cycle", _election_cycle, "campaign, leader, proclaim, re-campaign, resign")
REG.add("proclaim-missing-leader", lambda k: [post(f"{ELECTION}/proclaim", {"value": b64("v2")},
                                                   expect=500)], "etcd's e2e case")
REG.add("resign-missing-leader", lambda k: [post(f"{ELECTION}/resign", {}, expect=500)], "etcd's e2e case")
REG.add("resign-empty-leader", lambda k: [post(f"{ELECTION}/resign", {"leader": {"lease": lease_id(k)}},
                                               expect=500)], "key is not provided")
REG.add("proclaim-lease-not-found",
        lambda k: [post(f"{ELECTION}/proclaim", {"leader": leader_key(k, "e", 999, "1")}, expect=500)],
        "the put's lease does not exist")
REG.add("campaign-lease-not-found",
        lambda k: [post(f"{ELECTION}/campaign", {"name": k("e"), "lease": 999}, expect=500)], "no lease")
REG.add("campaign-bad-json", lambda k: [post(f"{ELECTION}/campaign", "{", expect=400)], "decode error")
REG.add("leader-unknown-field", lambda k: [post(f"{ELECTION}/leader", {"name": k("e"), "bogus": 1},
                                                expect=500)], "unknown fields are ignored")
REG.add("leader-bad-name", lambda k: [post(f"{ELECTION}/leader", {"name": 5}, expect=400)], "decode error")
REG.add("observe-bad-json", lambda k: [post(f"{ELECTION}/observe", "xx", expect=400)], "decode error")
REG.add("observe-bad-name", lambda k: [post(f"{ELECTION}/observe", {"name": 5}, expect=400)],
        "decode error")
REG.add("observe-get", lambda k: [Step(f"{ELECTION}/observe", method="GET", expect=405)], "POST only")


def _leader_current(k: Keys) -> list[Step]:
    lease = lease_id(k)
    return [grant(lease), post(f"{ELECTION}/campaign", {"name": k("o"), "lease": lease}),
            post("/v3beta/election/leader", {"name": k("o")})]


REG.add("leader-empty-value", _leader_current, "an empty value is omitted from the kv")

CASES = REG.cases
