"""Backup and restore: save a member's database over the gateway, inspect a saved file, restore it
into a fresh data directory for a new cluster (what `etcdctl snapshot save` and `etcdutl snapshot
status|restore` do for etcd). The CLI (`etcdpy snapshot …`, `snapshot_cli.py`) and any other tool call
these functions; they take paths and URLs and raise `SnapshotError` with a message for the operator.

The snapshot file format (docs/snapshot-format.md): the database dump of `etcdpy.storage.db_snapshot` (records
`family u8 | key length u32 | value length u32 | key | value`, ending with a trailer record that holds
the SHA-256 of the records) followed by 32 bytes: the SHA-256 of the whole dump, trailer included. The
last 32 bytes are what etcd's snapshot stream ends with and what etcd appends to its saved files.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import msgpack
import orjson

from etcdpy.app.config import Config, ConfigError
from etcdpy.app.server.alarms import META_ALARMS
from etcdpy.app.server.downgrade import META_DOWNGRADE
from etcdpy.app.server.identity import cluster_id, member_id
from etcdpy.app.server.membership import META_CLUSTER_ID, META_MEMBERS, META_REMOVED, Member
from etcdpy.app.server.raft_node import encode_snapshot_record
from etcdpy.raft import ConfState
from etcdpy.storage import db_snapshot
from etcdpy.storage.db_snapshot import SnapshotCorruptError
from etcdpy.storage.mvcc import FAMILIES, META_CURRENT_REV, MVCCStore
from etcdpy.storage.wal import WAL, WalHardState

SHA_BYTES = 32
SNAPSHOT_PATH = "/v3/maintenance/snapshot"
RESTORE_TERM = 1  # the restored log starts at term 1, as etcdutl's does

Progress = Callable[[int, int], None]  # (bytes received, bytes in total)


class SnapshotError(Exception):
    """The snapshot could not be saved, read or restored; the message says why."""


@dataclass(frozen=True)
class SnapshotStatus:
    hash: int  # CRC-32 over every record's key and value
    revision: int
    total_key: int  # records in every family, as etcdutl counts keys in every bucket
    total_size: int  # bytes of the dump (the file without its trailing SHA-256)

    def to_json(self) -> dict[str, int]:
        return {"hash": self.hash, "revision": self.revision, "totalKey": self.total_key,
                "totalSize": self.total_size}


# ------------------------------------------------------------------------------------------ save

def save(endpoint: str, path: str, progress: Progress | None = None, timeout: float = 30.0) -> int:
    """Stream the database of the member at `endpoint` into `path`; returns the dump's size.

    The file is written as `path.part` and renamed only once the stream ended with a SHA-256 that
    matches what arrived, so a cut connection never leaves a file that looks complete.
    """
    part = path + ".part"
    url = endpoint.rstrip("/") + SNAPSHOT_PATH
    digest = hashlib.sha256()
    received, total, checksum = 0, -1, b""
    try:
        with open(part, "wb") as out, httpx.stream("POST", url, content=b"{}", timeout=timeout) as resp:
            if resp.status_code != 200:
                raise SnapshotError(_error_text(resp.read(), resp.status_code))
            for line in resp.iter_lines():
                if not line.strip():
                    continue
                message = orjson.loads(line)
                if "result" not in message:
                    raise SnapshotError(_error_text(line.encode(), 200))
                result = message["result"]
                blob = base64.b64decode(result.get("blob", ""))
                if total >= 0 and received >= total:
                    checksum = blob  # every data byte is in: this is the SHA-256 message
                    out.write(blob)
                    break
                if total < 0:
                    total = len(blob) + int(result.get("remaining_bytes", 0))
                received += len(blob)
                digest.update(blob)
                out.write(blob)
                if progress is not None:
                    progress(received, total)
            out.flush()
            os.fsync(out.fileno())
    except httpx.HTTPError as exc:
        _remove(part)
        raise SnapshotError(f"cannot fetch the snapshot from {endpoint}: {exc}") from None
    except BaseException:
        _remove(part)
        raise
    if total < 0 or received != total or checksum != digest.digest():
        _remove(part)
        raise SnapshotError(f"the snapshot stream from {endpoint} ended early or its checksum does not match "
                            f"({received} of {max(total, 0)} bytes)")
    os.replace(part, path)
    return total


def _error_text(body: bytes, status: int) -> str:
    try:
        return str(orjson.loads(body).get("message") or body.decode(errors="replace"))
    except (orjson.JSONDecodeError, AttributeError):
        return f"HTTP {status}: {body.decode(errors='replace').strip()}"


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------------------------- inspect

def verify(path: str, skip_hash_check: bool = False) -> int:
    """Check a snapshot file's framing and trailing SHA-256; returns the length of its dump.

    A file cut anywhere, or with a changed byte anywhere, is refused (the dump's own checksum is
    checked while it is read).
    """
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc.strerror}") from None
    try:
        length = db_snapshot.stream_length(path)
    except SnapshotCorruptError as exc:
        raise SnapshotError(f"invalid snapshot {path}: {exc}") from None
    tail = size - length
    if tail == 0:
        if not skip_hash_check:
            raise SnapshotError("snapshot missing hash but --skip-hash-check=false")
        return length
    if tail != SHA_BYTES:
        raise SnapshotError(f"invalid snapshot {path}: {tail} unexpected bytes after the database")
    if not skip_hash_check:
        digest = hashlib.sha256()
        for chunk in db_snapshot.read_range(path, length):
            digest.update(chunk)
        with open(path, "rb") as f:
            f.seek(length)
            expected = f.read(SHA_BYTES)
        if expected != digest.digest():
            raise SnapshotError(f"expected sha256 {expected.hex()}, got {digest.hexdigest()}")
    return length


def status(path: str) -> SnapshotStatus:
    """Hash, revision, record count and size of a snapshot file (after verifying it)."""
    length = verify(path)
    crc, count, revision = 0, 0, 1
    meta = FAMILIES.index("meta")
    try:
        for family, key, value in db_snapshot.iter_records(db_snapshot.read_range(path, length)):
            crc = zlib.crc32(value, zlib.crc32(key, crc))
            count += 1
            if family == meta and key == META_CURRENT_REV:
                revision = int.from_bytes(value, "big")
    except SnapshotCorruptError as exc:
        raise SnapshotError(f"invalid snapshot {path}: {exc}") from None
    return SnapshotStatus(crc, revision, count, length)


# ------------------------------------------------------------------------------------- restore

def restore(path: str, *, name: str, initial_cluster: str, initial_advertise_peer_urls: list[str],
            initial_cluster_token: str = "etcd-cluster", data_dir: str = "",
            skip_hash_check: bool = False) -> str:
    """Write a new data directory for member `name` of a new cluster from a snapshot file.

    As `etcdutl snapshot restore` does: the keyspace, revisions and leases come from the snapshot; the
    membership comes from the flags (new member ids and cluster id, derived from the peer URLs and the
    token as a new cluster's are); the log starts with a snapshot marker at index = number of members,
    term 1, committed, so every member restored from the same file starts from the same state.
    Returns the data directory.
    """
    config = Config(name=name, data_dir=data_dir, initial_cluster=initial_cluster,
                    initial_advertise_peer_urls=list(initial_advertise_peer_urls),
                    initial_cluster_token=initial_cluster_token)
    try:
        config.validate()
    except ConfigError as exc:
        raise SnapshotError(str(exc)) from None
    if os.path.exists(config.data_dir):
        raise SnapshotError(f'data-dir "{config.data_dir}" exists')
    length = verify(path, skip_hash_check)
    members = [Member(member_id(urls, initial_cluster_token), member_name, sorted(urls), [], False)
               for member_name, urls in config.cluster_members.items()]
    ids = sorted(m.id for m in members)
    me = next(m.id for m in members if m.name == name)
    cid = cluster_id(ids)
    index = len(members)  # etcdutl: one conf-change entry per member, all committed
    member_dir = os.path.join(config.data_dir, "member")
    try:
        os.makedirs(member_dir)
        try:
            db_snapshot.load(os.path.join(member_dir, "db"), db_snapshot.read_range(path, length))
        except SnapshotCorruptError as exc:
            raise SnapshotError(f"invalid snapshot {path}: {exc}") from None
        store = MVCCStore(os.path.join(member_dir, "db"))
        try:
            # The old cluster's membership, alarms and downgrade job do not carry over to the new one.
            store.commit_meta(index, {
                META_MEMBERS: msgpack.packb([m.pack() for m in sorted(members, key=lambda m: m.id)]),
                META_REMOVED: msgpack.packb([]),
                META_CLUSTER_ID: cid.to_bytes(8, "big"),
                META_ALARMS: msgpack.packb([]),
                META_DOWNGRADE: msgpack.packb([False, ""]),
            })
            store.db.flush_wal(True)
        finally:
            store.close()
        wal = WAL(os.path.join(member_dir, "wal"))
        wal.open()
        wal.save_metadata(msgpack.packb([me, cid]))
        wal.save_snapshot(index, RESTORE_TERM, encode_snapshot_record(ConfState(voters=ids), index))
        wal.append([], WalHardState(RESTORE_TERM, 0, index))
        wal.sync()
        wal.close()
    except BaseException:
        shutil.rmtree(config.data_dir, ignore_errors=True)
        raise
    return config.data_dir
