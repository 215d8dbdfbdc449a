"""etcdpy-benchmark: load generator and comparison harness for etcd v3 JSON gateways.

Throughput workloads are driven by Debian's `wrk` (C, epoll) through generated Lua scripts so that the
client is never the bottleneck; stream workloads (watch, lease keepalive) use raw asyncio streams.
"""
