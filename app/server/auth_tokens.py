"""Auth tokens as etcd issues them: `--auth-token simple` (the default) or `jwt,...`.

Simple tokens are a random 16-letter prefix chosen by the member that received the authenticate
request, a dot, and the log index of the authenticate entry. The entry carries the prefix, so every
member registers the same token when it applies the entry (a token works on every member, as in
etcd); the table lives in memory only, so a restarted member forgets its tokens, and a token unused
for `--auth-token-ttl` seconds expires. Changing a user's password or deleting the user drops its
tokens; disabling auth drops them all.

JWT tokens are stateless: signed claims `{"username", "revision", "exp"}` checked with the configured
key and algorithm only (a token signed by another key or with `alg: none` is refused). The auth
revision in the claims is compared with the store's at every check, so any auth change makes older
JWTs fail with etcd's "revision of auth store is old" until the client authenticates again.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable
from typing import Any, Protocol

from etcdpy.app.config import ConfigError, parse_duration

_LETTERS = string.ascii_letters
PREFIX_LEN = 16
JWT_DEFAULT_TTL_S = 300.0
_JWT_ALGORITHMS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                   "HS256", "HS384", "HS512"}


class TokenProvider(Protocol):
    def assign(self, prefix: str, index: int, username: str, revision: int) -> str: ...

    def info(self, token: str) -> tuple[str, int | None] | None:
        """(username, auth revision the token carries, or None for "the current one"), or None."""
        ...

    def invalidate_user(self, username: str) -> None: ...

    def clear(self) -> None: ...


def new_prefix() -> str:
    return "".join(secrets.choice(_LETTERS) for _ in range(PREFIX_LEN))


class SimpleTokens:
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (username, deadline)

    def assign(self, prefix: str, index: int, username: str, revision: int) -> str:
        now = self.clock()
        if len(self.tokens) > 1024:
            self._sweep(now)
        token = f"{prefix}.{index}"
        self.tokens[token] = (username, now + self.ttl_s)
        return token

    def info(self, token: str) -> tuple[str, int | None] | None:
        found = self.tokens.get(token)
        if found is None:
            return None
        now = self.clock()
        if found[1] <= now:
            del self.tokens[token]
            return None
        self.tokens[token] = (found[0], now + self.ttl_s)  # etcd's TTL keeper resets on use
        return found[0], None

    def _sweep(self, now: float) -> None:
        for token in [t for t, (_, deadline) in self.tokens.items() if deadline <= now]:
            del self.tokens[token]

    def invalidate_user(self, username: str) -> None:
        for token in [t for t, (user, _) in self.tokens.items() if user == username]:
            del self.tokens[token]

    def clear(self) -> None:
        self.tokens.clear()


class JwtTokens:
    """Signed, stateless tokens. PyJWT (and the cryptography package under it) is imported only here:
    loading it costs a member that does not use JWT about 35 ms of every start."""

    def __init__(self, method: str, sign_key: Any, verify_key: Any, ttl_s: float) -> None:
        self.method = method
        self.sign_key = sign_key
        self.verify_key = verify_key
        self.ttl_s = ttl_s

    def assign(self, prefix: str, index: int, username: str, revision: int) -> str:
        if self.sign_key is None:
            raise ConfigError("jwt: no private key configured to sign tokens")
        import jwt

        claims = {"username": username, "revision": revision, "exp": int(time.time() + self.ttl_s)}
        return jwt.encode(claims, self.sign_key, algorithm=self.method)

    def info(self, token: str) -> tuple[str, int | None] | None:
        import jwt

        try:
            claims = jwt.decode(token, self.verify_key, algorithms=[self.method],
                                options={"require": ["exp"]})
        except jwt.PyJWTError:
            return None
        username, revision = claims.get("username"), claims.get("revision")
        if not isinstance(username, str) or not isinstance(revision, int) or isinstance(revision, bool):
            return None
        return username, revision

    def invalidate_user(self, username: str) -> None:
        pass  # stateless: the auth revision in the claims makes older tokens fail instead

    def clear(self) -> None:
        pass


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"jwt: cannot read {what} {path}: {exc.strerror}") from None


def new_token_provider(spec: str, simple_ttl_s: float) -> TokenProvider:
    """Build the provider `--auth-token` names (etcd's syntax), or raise ConfigError."""
    kind, _, rest = spec.partition(",")
    if kind == "simple":
        return SimpleTokens(simple_ttl_s)
    if kind != "jwt":
        raise ConfigError(f"unknown token type: {kind}")
    opts: dict[str, str] = {}
    for part in filter(None, rest.split(",")):
        name, eq, value = part.partition("=")
        if not eq:
            raise ConfigError(f"invalid jwt option: {part}")
        opts[name] = value
    method = opts.get("sign-method", "")
    if method not in _JWT_ALGORITHMS:
        raise ConfigError(f"jwt: unsupported sign-method {method!r}")
    ttl = JWT_DEFAULT_TTL_S
    if "ttl" in opts:
        try:
            ttl = parse_duration(opts["ttl"])
        except ValueError as exc:
            raise ConfigError(f"jwt: invalid ttl: {exc}") from None
    if method.startswith("HS"):
        key_path = opts.get("priv-key") or opts.get("pub-key")
        if not key_path:
            raise ConfigError("jwt: an HMAC sign-method needs priv-key (the shared secret)")
        secret = _read(key_path, "key")
        return JwtTokens(method, secret, secret, ttl)
    from cryptography.hazmat.primitives import serialization

    priv = pub = None
    if opts.get("priv-key"):
        try:
            priv = serialization.load_pem_private_key(_read(opts["priv-key"], "priv-key"), password=None)
        except ValueError as exc:
            raise ConfigError(f"jwt: cannot load priv-key: {exc}") from None
    if opts.get("pub-key"):
        try:
            pub = serialization.load_pem_public_key(_read(opts["pub-key"], "pub-key"))
        except ValueError as exc:
            raise ConfigError(f"jwt: cannot load pub-key: {exc}") from None
    if priv is None and pub is None:
        raise ConfigError("jwt: pub-key or priv-key is required")
    if pub is None:
        assert priv is not None
        pub = priv.public_key()  # type: ignore[union-attr]
    return JwtTokens(method, priv, pub, ttl)
