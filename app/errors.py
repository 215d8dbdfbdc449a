"""The one error table: domain errors to etcd's messages, gRPC codes and HTTP statuses.

A gateway error body is `{"error": msg, "message": msg, "code": grpc_code}`; the HTTP status follows
from the gRPC code by grpc-gateway v1's table.
"""

from __future__ import annotations

import logging

from etcdpy.storage import errors as se

log = logging.getLogger("etcdpy.errors")

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
    # auth (etcd's rpctypes: the auth store's errors as the gateway reports them)
    se.RootUserNotExistError: ("etcdserver: root user does not exist", FAILED_PRECONDITION),
    se.RootRoleNotExistError: ("etcdserver: root user does not have root role", FAILED_PRECONDITION),
    se.UserAlreadyExistError: ("etcdserver: user name already exists", FAILED_PRECONDITION),
    se.UserEmptyError: ("etcdserver: user name is empty", INVALID_ARGUMENT),
    se.UserNotFoundError: ("etcdserver: user name not found", FAILED_PRECONDITION),
    se.RoleAlreadyExistError: ("etcdserver: role name already exists", FAILED_PRECONDITION),
    se.RoleNotFoundError: ("etcdserver: role name not found", FAILED_PRECONDITION),
    se.RoleEmptyError: ("etcdserver: role name is empty", INVALID_ARGUMENT),
    se.AuthFailedError: ("etcdserver: authentication failed, invalid user ID or password", INVALID_ARGUMENT),
    se.PermissionDeniedError: ("etcdserver: permission denied", PERMISSION_DENIED),
    se.PermissionNotGivenError: ("etcdserver: permission not given", INVALID_ARGUMENT),
    se.RoleNotGrantedError: ("etcdserver: role is not granted to the user", FAILED_PRECONDITION),
    se.PermissionNotGrantedError: ("etcdserver: permission is not granted to the role", FAILED_PRECONDITION),
    se.AuthNotEnabledError: ("etcdserver: authentication is not enabled", FAILED_PRECONDITION),
    se.InvalidAuthTokenError: ("etcdserver: invalid auth token", UNAUTHENTICATED),
    se.InvalidAuthMgmtError: ("etcdserver: invalid auth management", INVALID_ARGUMENT),
    se.AuthOldRevisionError: ("etcdserver: revision of auth store is old", INVALID_ARGUMENT),
}

# gRPC code names, for texts etcd builds from a gRPC status ("rpc error: code = X desc = msg").
GRPC_CODE_NAMES = {
    0: "OK", 1: "Canceled", 2: "Unknown", 3: "InvalidArgument", 4: "DeadlineExceeded", 5: "NotFound",
    6: "AlreadyExists", 7: "PermissionDenied", 8: "ResourceExhausted", 9: "FailedPrecondition",
    10: "Aborted", 11: "OutOfRange", 12: "Unimplemented", 13: "Internal", 14: "Unavailable",
    15: "DataLoss", 16: "Unauthenticated",
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

# Membership and leadership (the cluster and maintenance services).
MEMBER_NOT_FOUND = ("etcdserver: member not found", NOT_FOUND)
PEER_URL_EXISTS = ("etcdserver: Peer URLs already exists", FAILED_PRECONDITION)
MEMBER_ID_EXISTS = ("etcdserver: member ID already exist", FAILED_PRECONDITION)
TOO_MANY_LEARNERS = ("etcdserver: too many learner members in cluster", FAILED_PRECONDITION)
BAD_URLS = ("etcdserver: given member URLs are invalid", INVALID_ARGUMENT)
NOT_A_LEARNER = ("etcdserver: can only promote a learner member", FAILED_PRECONDITION)
LEARNER_NOT_READY = ("etcdserver: can only promote a learner member which is in sync with leader",
                     FAILED_PRECONDITION)
BAD_TRANSFEREE = ("etcdserver: bad leader transferee", FAILED_PRECONDITION)
NOT_LEADER = ("etcdserver: not leader", FAILED_PRECONDITION)
NOT_ENOUGH_STARTED = ("etcdserver: re-configuration failed due to not enough started members",
                      FAILED_PRECONDITION)
UNHEALTHY = ("etcdserver: unhealthy cluster", UNAVAILABLE)
TRANSFER_TOO_LONG = ("etcdserver: request timed out, leader transfer took too long", UNAVAILABLE)

# Locks and elections (etcd's v3lock and v3election). etcd serves them through its own client, so every
# failure, a KV or lease error included, reaches the gateway as a plain error: gRPC code Unknown.
MISSING_LEADER_KEY = ('"leader" field must be provided', UNKNOWN)
ELECTION_NO_LEADER = ("election: no leader", UNKNOWN)
ELECTION_NOT_LEADER = ("election: not leader", UNKNOWN)
MUTEX_SESSION_EXPIRED = ("mutex: session is expired", UNKNOWN)

# Downgrade (etcd 3.5's Maintenance.Downgrade).
WRONG_DOWNGRADE_FORMAT = ("etcdserver: wrong downgrade target version format", INVALID_ARGUMENT)
INVALID_DOWNGRADE_TARGET = ("etcdserver: invalid downgrade target version", INVALID_ARGUMENT)
DOWNGRADE_IN_PROCESS = ("etcdserver: cluster has a downgrade job in progress", FAILED_PRECONDITION)
NO_INFLIGHT_DOWNGRADE = ("etcdserver: no inflight downgrade job", FAILED_PRECONDITION)
UNKNOWN_METHOD = ("etcdserver: unknown method", UNKNOWN)


def server_error(entry: tuple[str, int]) -> EtcdError:
    return EtcdError(*entry)


def to_etcd_error(exc: Exception) -> EtcdError:
    """Map any exception raised while serving a request to the error etcd would give."""
    if isinstance(exc, EtcdError):
        return exc
    for cls in type(exc).__mro__:  # a subclass of a domain error is reported as that error
        found = _DOMAIN.get(cls)
        if found is not None:
            return EtcdError(*found)
    return EtcdError(str(exc) or type(exc).__name__, UNKNOWN)


def via_client(exc: Exception) -> EtcdError:
    """An error as etcd's lock and election services report it: the message of the error etcd's client
    got, with code Unknown (they call the KV and lease services through a client, not directly)."""
    err = to_etcd_error(exc)
    return err if err.code == UNKNOWN else EtcdError(err.message, UNKNOWN)
def grpc_status_text(err: EtcdError) -> str:
    """The error as Go's status.Error prints it (etcd uses this as a refused watch's cancel reason)."""
    return f"rpc error: code = {GRPC_CODE_NAMES.get(err.code, 'Unknown')} desc = {err.message}"


def grpc_message_too_large(size: int, limit: int) -> EtcdError:
    return EtcdError(f"grpc: received message larger than max ({size} vs. {limit})", RESOURCE_EXHAUSTED)


def internal_error(exc: BaseException, where: str) -> EtcdError:
    """An exception no handler expected: one log line (not a traceback per request) and the answer
    etcd's gateway gives for an error gRPC reports without a status, code 2 (Unknown), HTTP 500."""
    text = str(exc) or type(exc).__name__
    origin = exc.__traceback__
    while origin is not None and origin.tb_next is not None:
        origin = origin.tb_next
    at = f" at {origin.tb_frame.f_code.co_filename}:{origin.tb_lineno}" if origin is not None else ""
    log.error("%s: unexpected %s: %.200s%s", where, type(exc).__name__, text, at)
    return EtcdError(text, UNKNOWN)

# The plain REST view (`/kv/{key}`, beyond etcd): its own answers, in etcd's error shape.
REST_KEY_NOT_FOUND = ("etcdpy: key not found", NOT_FOUND)
REST_PRECONDITION_FAILED = ("etcdpy: precondition failed: the key's mod_revision does not match",
                            FAILED_PRECONDITION)
REST_BAD_PARAMETER = ("etcdpy: invalid query parameter", INVALID_ARGUMENT)
