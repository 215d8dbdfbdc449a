"""Simple tokens expire after the TTL unused, and each use extends them, as etcd's TTL keeper does."""

from __future__ import annotations

from etcdpy.app.server.auth_tokens import SimpleTokens, new_prefix


def test_simple_token_ttl_is_reset_by_use() -> None:
    now = [100.0]
    tokens = SimpleTokens(10.0, clock=lambda: now[0])
    token = tokens.assign(new_prefix(), 7, "u1", 3)
    assert token.endswith(".7") and len(token.split(".")[0]) == 16
    now[0] = 109.0
    assert tokens.info(token) == ("u1", None)
    now[0] = 118.0  # 9 s after the last use: still alive
    assert tokens.info(token) == ("u1", None)
    now[0] = 128.5
    assert tokens.info(token) is None
    other = tokens.assign(new_prefix(), 8, "u2", 3)
    tokens.invalidate_user("u2")
    assert tokens.info(other) is None
