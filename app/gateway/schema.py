"""The etcdserverpb messages the gateway speaks, declared once.

Field order is proto declaration order (which is also the wire order of responses), numbers are the proto
field numbers (used to size a request as etcd does before it checks --max-request-bytes), and kinds
drive request decoding and the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALARS = ("bytes", "int64", "uint64", "int32", "uint32", "bool", "string")


_JSON_NAMES: dict[str, str] = {}  # lowerCamelCase names, computed once: the codec asks on every request


def lower_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    number: int
    kind: str  # a scalar kind, or the name of an enum or a message
    repeated: bool = False
    oneof: str = ""
    doc: str = ""

    @property
    def json_name(self) -> str:
        return _JSON_NAMES.get(self.name) or _JSON_NAMES.setdefault(self.name, lower_camel(self.name))

    @property
    def is_scalar(self) -> bool:
        return self.kind in SCALARS

    @property
    def is_enum(self) -> bool:
        return self.kind in ENUMS

    @property
    def is_message(self) -> bool:
        return self.kind in MESSAGES


@dataclass(frozen=True, slots=True)
class Enum:
    go_name: str  # as Go's jsonpb names it in "unknown value" errors
    values: dict[str, int]


ENUMS: dict[str, Enum] = {
    "SortOrder": Enum("etcdserverpb.RangeRequest_SortOrder", {"NONE": 0, "ASCEND": 1, "DESCEND": 2}),
    "SortTarget": Enum(
        "etcdserverpb.RangeRequest_SortTarget", {"KEY": 0, "VERSION": 1, "CREATE": 2, "MOD": 3, "VALUE": 4}
    ),
    "CompareResult": Enum(
        "etcdserverpb.Compare_CompareResult", {"EQUAL": 0, "GREATER": 1, "LESS": 2, "NOT_EQUAL": 3}
    ),
    "CompareTarget": Enum(
        "etcdserverpb.Compare_CompareTarget", {"VERSION": 0, "CREATE": 1, "MOD": 2, "VALUE": 3, "LEASE": 4}
    ),
    "EventType": Enum("mvccpb.Event_EventType", {"PUT": 0, "DELETE": 1}),
    "FilterType": Enum("etcdserverpb.WatchCreateRequest_FilterType", {"NOPUT": 0, "NODELETE": 1}),
    "AlarmAction": Enum("etcdserverpb.AlarmRequest_AlarmAction", {"GET": 0, "ACTIVATE": 1, "DEACTIVATE": 2}),
    "AlarmType": Enum("etcdserverpb.AlarmType", {"NONE": 0, "NOSPACE": 1, "CORRUPT": 2}),
    "DowngradeAction": Enum(
        "etcdserverpb.DowngradeRequest_DowngradeAction", {"VALIDATE": 0, "ENABLE": 1, "CANCEL": 2}
    ),
    "PermissionType": Enum("authpb.Permission_Type", {"READ": 0, "WRITE": 1, "READWRITE": 2}),
}


def F(name: str, number: int, kind: str, repeated: bool = False, oneof: str = "", doc: str = "") -> Field:
    return Field(name, number, kind, repeated, oneof, doc)


MESSAGES: dict[str, list[Field]] = {
    "RangeRequest": [
        F("key", 1, "bytes", doc="First key of the range; the only key when range_end is empty."),
        F("range_end", 2, "bytes", doc="Exclusive end; `AA==` (a zero byte) means every key >= key."),
        F("limit", 3, "int64", doc="Maximum number of keys returned; 0 means no limit."),
        F("revision", 4, "int64", doc="Read as of this revision; 0 or less means the current revision."),
        F("sort_order", 5, "SortOrder"),
        F("sort_target", 6, "SortTarget"),
        F("serializable", 7, "bool", doc="Answer from this member's state without a quorum round."),
        F("keys_only", 8, "bool"),
        F("count_only", 9, "bool"),
        F("min_mod_revision", 10, "int64"),
        F("max_mod_revision", 11, "int64"),
        F("min_create_revision", 12, "int64"),
        F("max_create_revision", 13, "int64"),
    ],
    "PutRequest": [
        F("key", 1, "bytes"),
        F("value", 2, "bytes"),
        F("lease", 3, "int64", doc="Lease to attach the key to; 0 for none."),
        F("prev_kv", 4, "bool", doc="Return the key-value pair as it was before this put."),
        F("ignore_value", 5, "bool", doc="Keep the current value; only the lease changes."),
        F("ignore_lease", 6, "bool", doc="Keep the current lease; only the value changes."),
    ],
    "DeleteRangeRequest": [
        F("key", 1, "bytes"),
        F("range_end", 2, "bytes"),
        F("prev_kv", 3, "bool"),
    ],
    "RequestOp": [
        F("request_range", 1, "RangeRequest", oneof="request"),
        F("request_put", 2, "PutRequest", oneof="request"),
        F("request_delete_range", 3, "DeleteRangeRequest", oneof="request"),
        F("request_txn", 4, "TxnRequest", oneof="request"),
    ],
    "Compare": [
        F("result", 1, "CompareResult"),
        F("target", 2, "CompareTarget"),
        F("key", 3, "bytes"),
        F("version", 4, "int64", oneof="target_union"),
        F("create_revision", 5, "int64", oneof="target_union"),
        F("mod_revision", 6, "int64", oneof="target_union"),
        F("value", 7, "bytes", oneof="target_union"),
        F("lease", 8, "int64", oneof="target_union"),
        F("range_end", 64, "bytes"),
    ],
    "TxnRequest": [
        F("compare", 1, "Compare", repeated=True),
        F("success", 2, "RequestOp", repeated=True),
        F("failure", 3, "RequestOp", repeated=True),
    ],
    "CompactionRequest": [
        F("revision", 1, "int64"),
        F("physical", 2, "bool", doc="Answer only once the compaction has been carried out on disk."),
    ],
    # ------------------------------------------------------------------ responses
    "ResponseHeader": [
        F("cluster_id", 1, "uint64"),
        F("member_id", 2, "uint64"),
        F("revision", 3, "int64"),
        F("raft_term", 4, "uint64"),
    ],
    "KeyValue": [
        F("key", 1, "bytes"),
        F("create_revision", 2, "int64"),
        F("mod_revision", 3, "int64"),
        F("version", 4, "int64"),
        F("value", 5, "bytes"),
        F("lease", 6, "int64"),
    ],
    "RangeResponse": [
        F("header", 1, "ResponseHeader"),
        F("kvs", 2, "KeyValue", repeated=True),
        F("more", 3, "bool"),
        F("count", 4, "int64"),
    ],
    "PutResponse": [F("header", 1, "ResponseHeader"), F("prev_kv", 2, "KeyValue")],
    "DeleteRangeResponse": [
        F("header", 1, "ResponseHeader"),
        F("deleted", 2, "int64"),
        F("prev_kvs", 3, "KeyValue", repeated=True),
    ],
    "ResponseOp": [
        F("response_range", 1, "RangeResponse", oneof="response"),
        F("response_put", 2, "PutResponse", oneof="response"),
        F("response_delete_range", 3, "DeleteRangeResponse", oneof="response"),
        F("response_txn", 4, "TxnResponse", oneof="response"),
    ],
    "TxnResponse": [
        F("header", 1, "ResponseHeader"),
        F("succeeded", 2, "bool"),
        F("responses", 3, "ResponseOp", repeated=True),
    ],
    "CompactionResponse": [F("header", 1, "ResponseHeader")],
    # ------------------------------------------------------------------ watch and leases
    "WatchCreateRequest": [
        F("key", 1, "bytes", doc="Key to watch; empty means the key `\\0`."),
        F("range_end", 2, "bytes", doc="Watch [key, range_end); `AA==` means every key >= key."),
        F("start_revision", 3, "int64", doc="First revision to deliver; 0 means from now on."),
        F("progress_notify", 4, "bool", doc="Periodic progress messages while idle."),
        F("filters", 5, "FilterType", repeated=True),
        F("prev_kv", 6, "bool"),
        F("watch_id", 7, "int64", doc="Client-chosen watch ID; 0 lets the server choose."),
        F("fragment", 8, "bool", doc="Split very large responses into fragments."),
    ],
    "WatchCancelRequest": [F("watch_id", 1, "int64")],
    "WatchProgressRequest": [],
    "WatchRequest": [
        F("create_request", 1, "WatchCreateRequest", oneof="request_union"),
        F("cancel_request", 2, "WatchCancelRequest", oneof="request_union"),
        F("progress_request", 3, "WatchProgressRequest", oneof="request_union"),
    ],
    "Event": [
        F("type", 1, "EventType"),
        F("kv", 2, "KeyValue"),
        F("prev_kv", 3, "KeyValue"),
    ],
    "WatchResponse": [
        F("header", 1, "ResponseHeader"),
        F("watch_id", 2, "int64"),
        F("created", 3, "bool"),
        F("canceled", 4, "bool"),
        F("compact_revision", 5, "int64"),
        F("cancel_reason", 6, "string"),
        F("fragment", 7, "bool"),
        F("events", 11, "Event", repeated=True),
    ],
    "WatchStreamLine": [F("result", 1, "WatchResponse")],
    "LeaseGrantRequest": [
        F("TTL", 1, "int64", doc="Seconds; below the minimum (2 s by default) it is raised to it."),
        F("ID", 2, "int64", doc="Lease ID to use; 0 lets the server choose."),
    ],
    "LeaseGrantResponse": [
        F("header", 1, "ResponseHeader"), F("ID", 2, "int64"), F("TTL", 3, "int64"), F("error", 4, "string"),
    ],
    "LeaseRevokeRequest": [F("ID", 1, "int64")],
    "LeaseRevokeResponse": [F("header", 1, "ResponseHeader")],
    "LeaseKeepAliveRequest": [F("ID", 1, "int64")],
    "LeaseKeepAliveResponse": [F("header", 1, "ResponseHeader"), F("ID", 2, "int64"), F("TTL", 3, "int64")],
    "LeaseKeepAliveStreamLine": [F("result", 1, "LeaseKeepAliveResponse")],
    "LeaseTimeToLiveRequest": [F("ID", 1, "int64"), F("keys", 2, "bool")],
    "LeaseTimeToLiveResponse": [
        F("header", 1, "ResponseHeader"), F("ID", 2, "int64"), F("TTL", 3, "int64"),
        F("grantedTTL", 4, "int64"), F("keys", 5, "bytes", repeated=True),
    ],
    "LeaseLeasesRequest": [],
    "LeaseStatus": [F("ID", 1, "int64")],
    "LeaseLeasesResponse": [F("header", 1, "ResponseHeader"), F("leases", 2, "LeaseStatus", repeated=True)],
    # ------------------------------------------------------------------ lock and election
    "LockRequest": [
        F("name", 1, "bytes", doc="The lock's name; the owned key is `<name>/<lease in hex>`."),
        F("lease", 2, "int64", doc="Lease that holds the lock; 0 grants a new 60 s lease (not kept alive)."),
    ],
    "LockResponse": [F("header", 1, "ResponseHeader"), F("key", 2, "bytes")],
    "UnlockRequest": [F("key", 1, "bytes", doc="The key /v3/lock/lock answered.")],
    "UnlockResponse": [F("header", 1, "ResponseHeader")],
    "LeaderKey": [
        F("name", 1, "bytes"), F("key", 2, "bytes"), F("rev", 3, "int64"), F("lease", 4, "int64"),
    ],
    "CampaignRequest": [
        F("name", 1, "bytes", doc="The election's name; the leader key is `<name>/<lease in hex>`."),
        F("lease", 2, "int64", doc="Lease of the candidacy; 0 grants a new 60 s lease (not kept alive)."),
        F("value", 3, "bytes", doc="The value to proclaim once elected."),
    ],
    "CampaignResponse": [F("header", 1, "ResponseHeader"), F("leader", 2, "LeaderKey")],
    "ProclaimRequest": [F("leader", 1, "LeaderKey"), F("value", 2, "bytes")],
    "ProclaimResponse": [F("header", 1, "ResponseHeader")],
    "LeaderRequest": [F("name", 1, "bytes")],
    "LeaderResponse": [F("header", 1, "ResponseHeader"), F("kv", 2, "KeyValue")],
    "LeaderStreamLine": [F("result", 1, "LeaderResponse")],
    "ResignRequest": [F("leader", 1, "LeaderKey")],
    "ResignResponse": [F("header", 1, "ResponseHeader")],
    # ------------------------------------------------------------------ cluster and maintenance
    "Member": [
        F("ID", 1, "uint64"),
        F("name", 2, "string"),
        F("peerURLs", 3, "string", repeated=True),
        F("clientURLs", 4, "string", repeated=True),
        F("isLearner", 5, "bool"),
    ],
    "MemberListRequest": [],
    "MemberListResponse": [F("header", 1, "ResponseHeader"), F("members", 2, "Member", repeated=True)],
    "MemberAddRequest": [
        F("peerURLs", 1, "string", repeated=True),
        F("isLearner", 2, "bool", doc="Add a non-voting member that replicates the log."),
    ],
    "MemberAddResponse": [
        F("header", 1, "ResponseHeader"),
        F("member", 2, "Member"),
        F("members", 3, "Member", repeated=True),
    ],
    "MemberRemoveRequest": [F("ID", 1, "uint64")],
    "MemberRemoveResponse": [F("header", 1, "ResponseHeader"), F("members", 2, "Member", repeated=True)],
    "MemberUpdateRequest": [F("ID", 1, "uint64"), F("peerURLs", 2, "string", repeated=True)],
    "MemberUpdateResponse": [F("header", 1, "ResponseHeader"), F("members", 2, "Member", repeated=True)],
    "MemberPromoteRequest": [F("ID", 1, "uint64")],
    "MemberPromoteResponse": [F("header", 1, "ResponseHeader"), F("members", 2, "Member", repeated=True)],
    "StatusRequest": [],
    "StatusResponse": [
        F("header", 1, "ResponseHeader"),
        F("version", 2, "string"),
        F("dbSize", 3, "int64"),
        F("leader", 4, "uint64"),
        F("raftIndex", 5, "uint64"),
        F("raftTerm", 6, "uint64"),
        F("raftAppliedIndex", 7, "uint64"),
        F("errors", 8, "string", repeated=True),
        F("dbSizeInUse", 9, "int64"),
        F("isLearner", 10, "bool"),
    ],
    "MoveLeaderRequest": [F("targetID", 1, "uint64")],
    "MoveLeaderResponse": [F("header", 1, "ResponseHeader")],
    "AlarmRequest": [
        F("action", 1, "AlarmAction"),
        F("memberID", 2, "uint64", doc="The member the alarm is about; 0 means every member."),
        F("alarm", 3, "AlarmType"),
    ],
    "AlarmMember": [F("memberID", 1, "uint64"), F("alarm", 2, "AlarmType")],
    "AlarmResponse": [F("header", 1, "ResponseHeader"), F("alarms", 2, "AlarmMember", repeated=True)],
    "HashRequest": [],
    "HashResponse": [F("header", 1, "ResponseHeader"), F("hash", 2, "uint32")],
    "HashKVRequest": [F("revision", 1, "int64", doc="Hash the keyspace up to this revision; 0 = current.")],
    "HashKVResponse": [
        F("header", 1, "ResponseHeader"),
        F("hash", 2, "uint32"),
        F("compact_revision", 3, "int64"),
        F("hash_revision", 4, "int64"),
    ],
    "DefragmentRequest": [],
    "DefragmentResponse": [F("header", 1, "ResponseHeader")],
    "SnapshotRequest": [],
    "SnapshotResponse": [
        F("header", 1, "ResponseHeader"),
        F("remaining_bytes", 2, "uint64"),
        F("blob", 3, "bytes"),
    ],
    "SnapshotStreamLine": [F("result", 1, "SnapshotResponse")],
    "DowngradeRequest": [
        F("action", 1, "DowngradeAction"),
        F("version", 2, "string", doc="Target version, MAJOR.MINOR: one minor version below the cluster's."),
    ],
    "DowngradeResponse": [F("header", 1, "ResponseHeader"), F("version", 2, "string")],
    # ---- auth (etcd's Auth service and authpb)
    "AuthEnableRequest": [],
    "AuthDisableRequest": [],
    "AuthStatusRequest": [],
    "AuthenticateRequest": [F("name", 1, "string"), F("password", 2, "string")],
    "UserAddOptions": [F("no_password", 1, "bool", doc="A user that cannot authenticate with a password.")],
    "AuthUserAddRequest": [F("name", 1, "string"), F("password", 2, "string"),
                           F("options", 3, "UserAddOptions")],
    "AuthUserGetRequest": [F("name", 1, "string")],
    "AuthUserDeleteRequest": [F("name", 1, "string")],
    "AuthUserChangePasswordRequest": [F("name", 1, "string"), F("password", 2, "string")],
    "AuthUserGrantRoleRequest": [F("user", 1, "string"), F("role", 2, "string")],
    "AuthUserRevokeRoleRequest": [F("name", 1, "string"), F("role", 2, "string")],
    "AuthUserListRequest": [],
    "AuthRoleAddRequest": [F("name", 1, "string")],
    "AuthRoleGetRequest": [F("role", 1, "string")],
    "AuthRoleListRequest": [],
    "AuthRoleDeleteRequest": [F("role", 1, "string")],
    "Permission": [
        F("permType", 1, "PermissionType"),
        F("key", 2, "bytes"),
        F("range_end", 3, "bytes", doc="Exclusive end; empty: the key alone; `AA==`: every key >= key."),
    ],
    "AuthRoleGrantPermissionRequest": [F("name", 1, "string"), F("perm", 2, "Permission")],
    "AuthRoleRevokePermissionRequest": [F("role", 1, "string"), F("key", 2, "bytes"),
                                        F("range_end", 3, "bytes")],
    "AuthResponse": [F("header", 1, "ResponseHeader")],
    "AuthenticateResponse": [F("header", 1, "ResponseHeader"), F("token", 2, "string")],
    "AuthStatusResponse": [F("header", 1, "ResponseHeader"), F("enabled", 2, "bool"),
                           F("authRevision", 3, "uint64")],
    "AuthUserGetResponse": [F("header", 1, "ResponseHeader"), F("roles", 2, "string", repeated=True)],
    "AuthUserListResponse": [F("header", 1, "ResponseHeader"), F("users", 2, "string", repeated=True)],
    "AuthRoleGetResponse": [F("header", 1, "ResponseHeader"), F("perm", 2, "Permission", repeated=True)],
    "AuthRoleListResponse": [F("header", 1, "ResponseHeader"), F("roles", 2, "string", repeated=True)],
    "Status": [
        F("error", 1, "string"),
        F("message", 2, "string"),
        F("code", 3, "int32"),
    ],
}


@dataclass(frozen=True, slots=True)
class Rpc:
    path: str
    request: str
    response: str
    summary: str


RPCS: list[Rpc] = [
    Rpc("/v3/kv/range", "RangeRequest", "RangeResponse", "Get the keys in a range."),
    Rpc("/v3/kv/put", "PutRequest", "PutResponse", "Put a key; creates a new revision."),
    Rpc("/v3/kv/deleterange", "DeleteRangeRequest", "DeleteRangeResponse", "Delete the keys in a range."),
    Rpc("/v3/kv/txn", "TxnRequest", "TxnResponse", "Compare, then run one branch, atomically."),
    Rpc("/v3/kv/compaction", "CompactionRequest", "CompactionResponse", "Drop history below a revision."),
    Rpc("/v3/cluster/member/list", "MemberListRequest", "MemberListResponse", "List the cluster's members."),
    Rpc("/v3/cluster/member/add", "MemberAddRequest", "MemberAddResponse", "Add a member (or a learner)."),
    Rpc("/v3/cluster/member/remove", "MemberRemoveRequest", "MemberRemoveResponse", "Remove a member."),
    Rpc("/v3/cluster/member/update", "MemberUpdateRequest", "MemberUpdateResponse",
        "Change a member's peer URLs."),
    Rpc("/v3/cluster/member/promote", "MemberPromoteRequest", "MemberPromoteResponse",
        "Promote an in-sync learner to a voting member."),
    Rpc("/v3/maintenance/status", "StatusRequest", "StatusResponse", "This member's status."),
    Rpc("/v3/maintenance/transfer-leadership", "MoveLeaderRequest", "MoveLeaderResponse",
        "Hand leadership to another voting member (etcdctl move-leader); ask the leader."),
    Rpc("/v3/maintenance/alarm", "AlarmRequest", "AlarmResponse",
        "Get, activate or deactivate alarms (NOSPACE, CORRUPT)."),
    Rpc("/v3/maintenance/hash", "HashRequest", "HashResponse", "Hash of this member's whole database."),
    Rpc("/v3/maintenance/hashkv", "HashKVRequest", "HashKVResponse",
        "Hash of the keyspace up to a revision (etcd 3.5); equal on members with equal content."),
    Rpc("/v3/maintenance/defragment", "DefragmentRequest", "DefragmentResponse",
        "Compact this member's database files and return freed space."),
    Rpc("/v3/maintenance/snapshot", "SnapshotRequest", "SnapshotStreamLine",
        "Stream this member's database: `{\"result\":{\"remaining_bytes\",\"blob\"}}` lines, "
        "then its SHA-256."),
    Rpc("/v3/maintenance/downgrade", "DowngradeRequest", "DowngradeResponse",
        "Validate, enable or cancel a cluster downgrade (etcd 3.5)."),
    Rpc("/v3/watch", "WatchRequest", "WatchStreamLine",
        "Watch keys: a stream of request objects in, one `{\"result\":WatchResponse}` line per message out."),
    Rpc("/v3/lease/grant", "LeaseGrantRequest", "LeaseGrantResponse", "Grant a lease."),
    Rpc("/v3/lease/revoke", "LeaseRevokeRequest", "LeaseRevokeResponse",
        "Revoke a lease; its keys are deleted in one revision."),
    Rpc("/v3/kv/lease/revoke", "LeaseRevokeRequest", "LeaseRevokeResponse", "Alias of /v3/lease/revoke."),
    Rpc("/v3/lease/keepalive", "LeaseKeepAliveRequest", "LeaseKeepAliveStreamLine",
        "Renew leases: one answer line per request object in the body."),
    Rpc("/v3/lease/timetolive", "LeaseTimeToLiveRequest", "LeaseTimeToLiveResponse",
        "Remaining TTL of a lease (and its keys)."),
    Rpc("/v3/kv/lease/timetolive", "LeaseTimeToLiveRequest", "LeaseTimeToLiveResponse",
        "Alias of /v3/lease/timetolive."),
    Rpc("/v3/lease/leases", "LeaseLeasesRequest", "LeaseLeasesResponse", "List all leases."),
    Rpc("/v3/lock/lock", "LockRequest", "LockResponse",
        "Block until the named lock is held; answers the owned key (ends if the lease does)."),
    Rpc("/v3/lock/unlock", "UnlockRequest", "UnlockResponse", "Release a lock: delete its key."),
    Rpc("/v3/election/campaign", "CampaignRequest", "CampaignResponse",
        "Block until elected leader; answers the leader key (ends if the lease does)."),
    Rpc("/v3/election/proclaim", "ProclaimRequest", "ProclaimResponse",
        "As the leader, announce a new value without another election."),
    Rpc("/v3/election/leader", "LeaderRequest", "LeaderResponse", "The current leader's key and value."),
    Rpc("/v3/election/observe", "LeaderRequest", "LeaderStreamLine",
        "Stream the leader and each change of it, one `{\"result\":LeaderResponse}` line each."),
    Rpc("/v3/election/resign", "ResignRequest", "ResignResponse",
        "Give up leadership (or a candidacy): delete the leader key."),
    Rpc("/v3/kv/lease/leases", "LeaseLeasesRequest", "LeaseLeasesResponse", "Alias of /v3/lease/leases."),
    Rpc("/v3/auth/enable", "AuthEnableRequest", "AuthResponse", "Turn authentication on (needs root)."),
    Rpc("/v3/auth/disable", "AuthDisableRequest", "AuthResponse", "Turn authentication off."),
    Rpc("/v3/auth/status", "AuthStatusRequest", "AuthStatusResponse",
        "Whether authentication is on, and the auth revision (etcd 3.5)."),
    Rpc("/v3/auth/authenticate", "AuthenticateRequest", "AuthenticateResponse",
        "Get a token; send it as the `Authorization` header."),
    Rpc("/v3/auth/user/add", "AuthUserAddRequest", "AuthResponse", "Add a user."),
    Rpc("/v3/auth/user/get", "AuthUserGetRequest", "AuthUserGetResponse", "A user's roles."),
    Rpc("/v3/auth/user/list", "AuthUserListRequest", "AuthUserListResponse", "Every user."),
    Rpc("/v3/auth/user/delete", "AuthUserDeleteRequest", "AuthResponse", "Delete a user."),
    Rpc("/v3/auth/user/changepw", "AuthUserChangePasswordRequest", "AuthResponse", "Change a password."),
    Rpc("/v3/auth/user/grant", "AuthUserGrantRoleRequest", "AuthResponse", "Grant a role to a user."),
    Rpc("/v3/auth/user/revoke", "AuthUserRevokeRoleRequest", "AuthResponse", "Revoke a role from a user."),
    Rpc("/v3/auth/role/add", "AuthRoleAddRequest", "AuthResponse", "Add a role."),
    Rpc("/v3/auth/role/get", "AuthRoleGetRequest", "AuthRoleGetResponse", "A role's permissions."),
    Rpc("/v3/auth/role/list", "AuthRoleListRequest", "AuthRoleListResponse", "Every role."),
    Rpc("/v3/auth/role/delete", "AuthRoleDeleteRequest", "AuthResponse", "Delete a role."),
    Rpc("/v3/auth/role/grant", "AuthRoleGrantPermissionRequest", "AuthResponse",
        "Grant a key-range permission to a role."),
    Rpc("/v3/auth/role/revoke", "AuthRoleRevokePermissionRequest", "AuthResponse",
        "Revoke a key-range permission from a role."),
]
