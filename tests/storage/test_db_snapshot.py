"""Installing a leader's database: a crash at any step leaves a whole database at the store's path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etcdpy.storage import db_snapshot
from etcdpy.storage.kv_types import PutRequest
from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.txn import apply_put
from etcdpy.storage.write_txn import WriteTxn


class Crash(BaseException):
    pass


def store_with(path: Path, keys: list[bytes]) -> MVCCStore:
    store = MVCCStore(str(path))
    for i, key in enumerate(keys, start=1):
        txn = WriteTxn(store, i)
        apply_put(txn, PutRequest(key=key, value=key))
        txn.end()
    return store


def keys_of(store: MVCCStore) -> list[bytes]:
    return [kv.key for kv in store.iter_latest(b"", b"\0")]


@pytest.mark.parametrize("crash_at_rename", [1, 2])
def test_install_cut_between_steps_leaves_old_or_new_database(tmp_path: Path, monkeypatch,
                                                              crash_at_rename: int) -> None:
    leader = store_with(tmp_path / "leader", [b"a", b"b", b"c"])
    dump = str(tmp_path / "dump")
    db_snapshot.dump_to_file(leader.families, dump)
    leader.close()
    follower = store_with(tmp_path / "follower", [b"old"])
    path = follower.path
    follower.close()

    renames = [0]
    real_rename = os.rename

    def rename(src: str, dst: str) -> None:
        renames[0] += 1
        if renames[0] == crash_at_rename:
            raise Crash()
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(Crash):
        db_snapshot.load(path, db_snapshot.read_chunks(dump))
    monkeypatch.setattr(os, "rename", real_rename)
    reopened = MVCCStore(path)
    # Cut before the new database took the name: the old one is back, whole (the WAL has not yet
    # recorded the snapshot, so it replays onto the old state).
    assert keys_of(reopened) == [b"old"]
    reopened.close()


def test_install_replaces_the_database(tmp_path: Path) -> None:
    leader = store_with(tmp_path / "leader", [b"a", b"b"])
    dump = str(tmp_path / "dump")
    db_snapshot.dump_to_file(leader.families, dump)
    leader.close()
    follower = store_with(tmp_path / "follower", [b"old"])
    follower.replace_with(lambda p: db_snapshot.load(p, db_snapshot.read_chunks(dump)))
    assert keys_of(follower) == [b"a", b"b"]
    assert not os.path.exists(follower.path + ".old")
    follower.close()
