"""The pure lessor: grant/revoke/renew/time-to-live/expiry/checkpoints with time passed in (no sleeps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdpy.storage import txn as txn_eval
from etcdpy.storage.errors import LeaseExistsError, LeaseNotFoundError, LeaseTTLTooLargeError
from etcdpy.storage.kv_types import EventType, PutRequest
from etcdpy.storage.lessor import MAX_LEASE_TTL, Lessor
from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.write_txn import WriteTxn


class World:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = MVCCStore(str(path))
        self.lessor = Lessor(self.store)
        self.index = 0

    def next_index(self) -> int:
        self.index += 1
        return self.index

    def put(self, key: bytes, lease: int) -> None:
        t = WriteTxn(self.store, self.next_index())
        txn_eval.apply_put(t, PutRequest(key, b"v", lease))
        t.end()

    def reopen(self) -> None:
        self.store.close()
        self.store = MVCCStore(str(self.path))
        self.lessor = Lessor(self.store)


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    w = World(tmp_path / "db")
    yield w
    w.store.close()


def test_grant_minimum_ttl_and_errors(world: World) -> None:
    lessor = world.lessor
    assert lessor.apply_grant(world.next_index(), 1, 0).ttl == 2
    assert lessor.apply_grant(world.next_index(), 2, 60).ttl == 60
    with pytest.raises(LeaseExistsError):
        lessor.apply_grant(world.next_index(), 2, 60)
    with pytest.raises(LeaseTTLTooLargeError):
        lessor.apply_grant(world.next_index(), 3, MAX_LEASE_TTL + 1)
    assert world.store.lease_exists(2) and not world.store.lease_exists(3)
    assert world.store.applied_index == world.index - 2  # failed grants write nothing


def test_expiry_follows_the_time_passed_in(world: World) -> None:
    lessor = world.lessor
    lessor.promote(100.0)
    lessor.apply_grant(world.next_index(), 1, 10)
    lessor.apply_grant(world.next_index(), 2, 20)
    lessor.settle(100.0)
    assert lessor.time_to_live(1, 103.5) == (6, 10)  # truncated, as etcd does
    assert lessor.expired(109.9) == []
    assert lessor.expired(110.0) == [1]
    assert lessor.expired(111.0) == []  # a revoke was proposed: not again before the retry interval
    assert lessor.expired(113.5) == [1]  # ... but again if it is still there after it
    assert lessor.renew(2, 115.0) == (20, False)
    assert lessor.expired(130.0) == [1]
    assert lessor.expired(132.0) == []
    assert lessor.expired(135.0) == [1, 2]


def test_renew_of_expired_or_unknown_lease_is_not_found(world: World) -> None:
    world.lessor.promote(0.0)
    world.lessor.apply_grant(world.next_index(), 1, 5)
    world.lessor.settle(0.0)
    with pytest.raises(LeaseNotFoundError):
        world.lessor.renew(1, 5.0)
    with pytest.raises(LeaseNotFoundError):
        world.lessor.renew(99, 1.0)
    assert world.lessor.time_to_live(99, 1.0) is None


def test_revoke_deletes_attached_keys_in_one_revision(world: World) -> None:
    lessor = world.lessor
    lessor.apply_grant(world.next_index(), 7, 60)
    for key in (b"c", b"a", b"b"):
        world.put(key, 7)
    world.put(b"x", 0)
    assert sorted(lessor.attached_keys(7)) == [b"a", b"b", b"c"]
    before = world.store.current_revision
    events = lessor.apply_revoke(world.next_index(), 7)
    assert world.store.current_revision == before + 1
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in events] == [
        (EventType.DELETE, k, before + 1) for k in (b"a", b"b", b"c")]
    assert world.store.get(b"a") is None and world.store.get(b"x") is not None
    assert not world.store.lease_exists(7) and lessor.attached_keys(7) == []
    with pytest.raises(LeaseNotFoundError):
        lessor.apply_revoke(world.next_index(), 7)


def test_revoke_without_keys_creates_no_revision(world: World) -> None:
    world.lessor.apply_grant(world.next_index(), 1, 60)
    before = world.store.current_revision
    assert world.lessor.apply_revoke(world.next_index(), 1) == []
    assert world.store.current_revision == before


def test_key_moved_to_another_lease_is_detached(world: World) -> None:
    world.lessor.apply_grant(world.next_index(), 1, 60)
    world.lessor.apply_grant(world.next_index(), 2, 60)
    world.put(b"k", 1)
    world.put(b"k", 2)
    assert world.lessor.attached_keys(1) == [] and world.lessor.attached_keys(2) == [b"k"]


def test_leases_survive_restart_with_a_fresh_ttl(world: World) -> None:
    world.lessor.apply_grant(world.next_index(), 5, 30)
    world.lessor.apply_grant(world.next_index(), -3, 40)
    world.put(b"k", 5)
    world.reopen()
    lessor = world.lessor
    assert sorted(lessor.leases) == [-3, 5]
    lessor.promote(1000.0)
    assert lessor.time_to_live(5, 1000.0) == (30, 30)
    assert lessor.attached_keys(5) == [b"k"]
    assert [lease.id for lease in lessor.listing()] == [5, -3]  # soonest expiry first


def test_checkpoint_carries_remaining_ttl_to_a_new_primary(world: World) -> None:
    lessor = world.lessor
    lessor.promote(0.0)
    lessor.apply_grant(world.next_index(), 1, 100)
    lessor.settle(0.0)
    assert lessor.due_checkpoints(10.0, interval=60.0) == []
    due = lessor.due_checkpoints(60.0, interval=60.0)
    assert due == [(1, 40)]
    lessor.apply_checkpoint(world.next_index(), due)
    world.reopen()
    world.lessor.promote(500.0)
    assert world.lessor.time_to_live(1, 500.0) == (40, 100)
    ttl, clear = world.lessor.renew(1, 501.0)
    assert (ttl, clear) == (100, True)  # the primary then logs a checkpoint of 0 to clear it


def test_demoted_lessor_never_expires(world: World) -> None:
    lessor = world.lessor
    lessor.promote(0.0)
    lessor.apply_grant(world.next_index(), 1, 5)
    lessor.settle(0.0)
    lessor.demote()
    assert lessor.expired(1e9) == []
    lessor.promote(1e9)
    assert lessor.expired(1e9 + 4) == [] and lessor.expired(1e9 + 5) == [1]
