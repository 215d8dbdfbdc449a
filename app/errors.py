"""The one error table: domain errors to etcd's messages, gRPC codes and HTTP statuses.

A gateway error body is `{"error": msg, "message": msg, "code": grpc_code}`; the HTTP status follows
from the gRPC code by grpc-gateway v1's table.
"""

from __future__ import annotations

from storage import errors as se

# gRPC code -> HTTP status (grpc-gateway v1 runtime.HTTPStatusFromCode).
HTTP_STATUS = {
    0: 200, 1: 408, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403,
    8: 429, 9: 412, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
}

CANCELED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND = 1, 2, 3, 4, 5
PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, OUT_OF_RANGE = 7, 8, 9, 11
INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED = 13, 14, 15, 16


class EtcdError(Exception):
    """An error as the gateway reports it: an etcd message and a gRPC code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


# Storage errors, by class, as etcd words them.
_DOMAIN: dict[type[Exception], tuple[str, int]] = {
    se.CompactedError: ("etcdserver: mvcc: required revision has been compacted", OUT_OF_RANGE),
    se.FutureRevisionError: ("etcdserver: mvcc: required revision is a future revision", OUT_OF_RANGE),
    se.KeyNotProvidedError: ("etcdserver: key is not provided", INVALID_ARGUMENT),
    se.KeyNotFoundError: ("etcdserver: key not found", INVALID_ARGUMENT),
    se.ValueProvidedError: ("etcdserver: value is provided", INVALID_ARGUMENT),
    se.LeaseProvidedError: ("etcdserver: lease is provided", INVALID_ARGUMENT),
    se.TooManyOpsError: ("etcdserver: too many operations in txn request", INVALID_ARGUMENT),
    se.DuplicateKeyError: ("etcdserver: duplicate key given in txn request", INVALID_ARGUMENT),
    se.LeaseNotFoundError: ("etcdserver: requested lease not found", NOT_FOUND),
    se.LeaseExistsError: ("etcdserver: lease already exists", FAILED_PRECONDITION),
    se.LeaseTTLTooLargeError: ("etcdserver: too large lease TTL", OUT_OF_RANGE),
}

# Server-level errors that have no storage class.
REQUEST_TOO_LARGE = ("etcdserver: request is too large", INVALID_ARGUMENT)
NO_SPACE = ("etcdserver: mvcc: database space exceeded", RESOURCE_EXHAUSTED)
CORRUPT = ("etcdserver: corrupt cluster", DATA_LOSS)
TIMEOUT = ("etcdserver: request timed out", UNAVAILABLE)
TIMEOUT_LEADER_FAIL = ("etcdserver: request timed out, possibly due to previous leader failure", UNAVAILABLE)
STOPPED = ("etcdserver: server stopped", UNAVAILABLE)
NO_LEADER = ("etcdserver: no leader", UNAVAILABLE)
LEADER_CHANGED = ("etcdserver: leader changed", UNAVAILABLE)
TOO_MANY_REQUESTS = ("etcdserver: too many requests", RESOURCE_EXHAUSTED)
NOT_SUPPORTED_FOR_LEARNER = ("etcdserver: rpc not supported for learner", UNAVAILABLE)


def server_error(entry: tuple[str, int]) -> EtcdError:
    return EtcdError(*entry)


def to_etcd_error(exc: Exception) -> EtcdError:
    """Map any exception raised while serving a request to the error etcd would give."""
    if isinstance(exc, EtcdError):
        return exc
    found = _DOMAIN.get(type(exc))
    if found is not None:
        return EtcdError(*found)
    return EtcdError(str(exc) or type(exc).__name__, UNKNOWN)


def grpc_message_too_large(size: int, limit: int) -> EtcdError:
    return EtcdError(f"grpc: received message larger than max ({size} vs. {limit})", RESOURCE_EXHAUSTED)
