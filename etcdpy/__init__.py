"""etcdpy: etcd's v3 JSON gateway on Raft and RocksDB.

The distribution installs its rooms under this one name, so they cannot collide with other packages
in a user's environment: `etcdpy.raft` (the consensus core, folder raft/), `etcdpy.storage` (WAL, MVCC,
watch hub, lessor; folder storage/), `etcdpy.app` (gateway, server glue, peer transport, CLI; folder
app/) and `etcdpy.bench` (the benchmark tool; folder bench/).
"""

__version__ = "0.1.0"
