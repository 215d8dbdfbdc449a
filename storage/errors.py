"""Domain errors of the storage layer.

They carry no HTTP or gRPC knowledge: the gateway's error table maps each class to etcd's message,
gRPC code and HTTP status.
"""


class StorageError(Exception):
    """Base of every error a storage operation reports to its caller."""


class CompactedError(StorageError):
    """The requested revision is below the compaction point."""


class FutureRevisionError(StorageError):
    """The requested revision is above the current revision."""


class KeyNotProvidedError(StorageError):
    """A request needs a key and has none."""


class KeyNotFoundError(StorageError):
    """ignore_value/ignore_lease on a key that does not exist, or a txn op with no request."""


class ValueProvidedError(StorageError):
    """ignore_value together with a value."""


class LeaseProvidedError(StorageError):
    """ignore_lease together with a lease."""


class TooManyOpsError(StorageError):
    """A txn list is longer than --max-txn-ops."""


class DuplicateKeyError(StorageError):
    """Two writes of overlapping keys in one txn branch."""


class LeaseNotFoundError(StorageError):
    """A put names a lease that does not exist."""


class LeaseExistsError(StorageError):
    """A lease grant names an ID that is already in use."""


class LeaseTTLTooLargeError(StorageError):
    """A lease grant asks for a TTL above etcd's maximum (9,000,000,000 s)."""


class AuthError(StorageError):
    """Base of the auth store's errors (users, roles, permissions, tokens)."""


class RootUserNotExistError(AuthError):
    """Auth enable without a root user."""


class RootRoleNotExistError(AuthError):
    """Auth enable while the root user lacks the root role."""


class UserAlreadyExistError(AuthError):
    pass


class UserEmptyError(AuthError):
    """A user name is needed and none was given (also: a request without a token under auth)."""


class UserNotFoundError(AuthError):
    pass


class RoleAlreadyExistError(AuthError):
    pass


class RoleNotFoundError(AuthError):
    pass


class RoleEmptyError(AuthError):
    pass


class AuthFailedError(AuthError):
    """Unknown user, wrong password, or a user without a password."""


class PermissionDeniedError(AuthError):
    pass


class PermissionNotGivenError(AuthError):
    """A role grant without a permission (etcd 3.5's answer; 3.4 crashes on it)."""


class RoleNotGrantedError(AuthError):
    pass


class PermissionNotGrantedError(AuthError):
    pass


class AuthNotEnabledError(AuthError):
    pass


class InvalidAuthTokenError(AuthError):
    pass


class InvalidAuthMgmtError(AuthError):
    """Removing the root user, the root role or root's root role while auth is enabled."""


class AuthOldRevisionError(AuthError):
    """The request was authorised at an auth revision that has moved since."""
