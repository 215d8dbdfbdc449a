"""`python -m tests.disk_fault_member DATA_DIR OP ERRNO ACKS`: a member whose WAL disk fails on purpose.

Runs an in-process member on `tests/power_loss.py`'s disk, puts keys one after another and prints
`ACK key revision` for each acknowledgement; after ACKS of them it prints `ARMED` and makes the next
WAL operation OP (write, fdatasync) fail with ERRNO (EIO, ENOSPC). The member must then exit non-zero
without acknowledging anything further (the raft loop's os._exit, as etcd's panic): the test
(tests/test_disk_errors.py) reads this output and the exit status.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import sys

from etcdpy.app.config import Config
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.kv_types import PutRequest
from tests.power_loss import FaultPlan, PowerLossDisk


async def main(data_dir: str, op: str, error: int, acks: int) -> None:
    disk = PowerLossDisk(random.Random(0))
    server = EtcdServer(Config(name="df", data_dir=data_dir, heartbeat_interval=10, election_timeout=100),
                        wal_files=disk)
    server.start()
    while not server.node.is_leader:
        await asyncio.sleep(0.01)
    for i in range(10_000):
        if i == acks:
            disk.plan = FaultPlan(op, error=error)
            print("ARMED", flush=True)
        key = f"df/{i:05d}".encode()
        result = await server.put(PutRequest(key=key, value=b"v%d" % i))
        print(f"ACK {key.decode()} {result.revision}", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    directory, op_name, errno_name, count = sys.argv[1:5]
    asyncio.run(main(directory, op_name, getattr(errno, errno_name), int(count)))
