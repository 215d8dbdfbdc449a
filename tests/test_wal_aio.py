"""WAL syncs through Linux AIO (app/server/wal_aio.py): a queued fdatasync completes through the loop,
a refused one raises at once and sends the WAL back to its sync thread, and a member on the real disk
syncs through AIO when several writes wait (so its Ready's sync runs beside its apply)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from etcdpy.app.server import wal_aio
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.kv_types import PutRequest, RangeRequest
from tests.test_propose_decoded import run

pytestmark = pytest.mark.skipif(wal_aio.sys.platform != "linux" or os.uname().machine != "x86_64",
                                reason="Linux AIO on x86_64 only; elsewhere the sync thread is the path")


def test_a_queued_sync_completes_through_the_loop(tmp_path: Path) -> None:
    async def main() -> None:
        aio = wal_aio.open_aio()
        assert aio is not None
        fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
        try:
            futures = []
            for i in range(4):  # several in flight at once, each its own completion
                os.pwrite(fd, b"x" * 4096, i * 4096)
                futures.append(aio.fdatasync(fd))
            assert not any(f.done() for f in futures)  # queued, not done in the call
            await asyncio.wait_for(asyncio.gather(*futures), 10)
            assert aio._inflight == {}
        finally:
            aio.close()
            os.close(fd)

    asyncio.run(main())


def test_a_refused_sync_raises_and_the_wal_falls_back_to_its_thread(tmp_path: Path) -> None:
    async def main() -> None:
        aio = wal_aio.open_aio()
        assert aio is not None
        read_end, write_end = os.pipe()  # a pipe has no fsync: the kernel refuses the submit
        try:
            with pytest.raises(OSError):
                aio.fdatasync(write_end)
            assert aio._inflight == {}
        finally:
            aio.close()

        class Wal:
            sync_fd = write_end

        observed: list[float] = []
        syncer = wal_aio.WalAioSync(Wal(), observed.append)  # type: ignore[arg-type]
        assert syncer.start() is None  # refused: the caller's thread syncs instead
        assert syncer.start() is None and syncer._aio is None  # and keeps doing so
        assert observed == []
        os.close(read_end)
        os.close(write_end)

    asyncio.run(main())


def test_a_member_on_the_real_disk_syncs_through_aio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    submitted: list[int] = []
    real = wal_aio.AioSync.fdatasync

    def counting(self: wal_aio.AioSync, fd: int) -> asyncio.Future[None]:
        submitted.append(fd)
        return real(self, fd)

    monkeypatch.setattr(wal_aio.AioSync, "fdatasync", counting)

    async def scenario(server: EtcdServer, gateway: object) -> None:
        keys = [f"k{i}".encode() for i in range(50)]
        # Many writes waiting at once: the Ready's sync is overlapped with the apply (not on the loop).
        await asyncio.gather(*(server.put(PutRequest(key=k, value=b"v")) for k in keys))
        assert submitted and set(submitted) == {server.wal.sync_fd}
        got = server.store.range(RangeRequest(key=b"k", range_end=b"l"))
        assert sorted(kv.key for kv in got.kvs) == sorted(keys)

    run(tmp_path, scenario)
