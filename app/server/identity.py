"""Member and cluster ids, derived from the bootstrap configuration exactly as etcd derives them."""

from __future__ import annotations

import hashlib


def member_id(peer_urls: list[str], cluster_token: str, unix_time: int | None = None) -> int:
    """First 8 bytes of SHA-1 over the sorted peer URLs, the cluster token (and a time for added members)."""
    data = "".join(sorted(peer_urls)) + cluster_token
    if unix_time is not None:
        data += str(unix_time)
    return int.from_bytes(hashlib.sha1(data.encode()).digest()[:8], "big")


def cluster_id(member_ids: list[int]) -> int:
    """First 8 bytes of SHA-1 over the sorted member ids, each as 8 big-endian bytes."""
    data = b"".join(mid.to_bytes(8, "big") for mid in sorted(member_ids))
    return int.from_bytes(hashlib.sha1(data).digest()[:8], "big")
