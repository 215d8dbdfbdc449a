"""Output printers, one class per ``-w`` format, byte-for-byte as etcdctl 3.4 prints them.

Every printer takes the gateway's JSON answers (int64 as strings, bytes base64). ``simple`` is the
human format, ``json`` is Go's encoding/json of etcdctl's response structs (see gojson), ``fields`` is
etcdctl's ``"Name" : value`` lines, ``table`` draws olekukonko/tablewriter tables for the commands
etcdctl supports it on, and ``yaml`` (an etcdpyctl extension) is the json structure as YAML. A format a
command does not support fails the way etcdctl does: ``Error: <fmt> not supported as output format``,
exit 4, *after* the request was made.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from etcdpy.app.ctl.client import JSON, CtlError, unb64
from etcdpy.app.ctl.gojson import (
    convert,
    dumps,
    go_bool,
    go_str_slice,
    humanize_bytes,
)
from etcdpy.app.go_quote import go_quote

EXIT_BAD_FEATURE = 4


def out(text: str | bytes) -> None:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    sys.stdout.buffer.write(data)


def i64(msg: JSON | None, name: str) -> int:
    return int((msg or {}).get(name, 0) or 0)


@dataclass
class EpHealth:
    ep: str
    health: bool
    took: str
    error: str = ""


@dataclass
class EpStatus:
    ep: str
    resp: JSON


@dataclass
class EpHash:
    ep: str
    resp: JSON


@dataclass
class DBStatus:
    hash: int
    revision: int
    total_key: int
    total_size: int


def member_rows(resp: JSON) -> tuple[list[str], list[list[str]]]:
    hdr = ["ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"]
    rows = []
    for m in resp.get("members", []):
        rows.append([f"{i64(m, 'ID'):x}", "started" if m.get("name") else "unstarted", m.get("name", ""),
                     ",".join(m.get("peerURLs", [])), ",".join(m.get("clientURLs", [])),
                     go_bool(bool(m.get("isLearner")))])
    return hdr, rows


def status_rows(statuses: Sequence[EpStatus]) -> tuple[list[str], list[list[str]]]:
    hdr = ["endpoint", "ID", "version", "db size", "is leader", "is learner", "raft term", "raft index",
           "raft applied index", "errors"]
    rows = []
    for st in statuses:
        r = st.resp
        member = i64(r.get("header"), "member_id")
        rows.append([st.ep, f"{member:x}", r.get("version", ""), humanize_bytes(i64(r, "dbSize")),
                     go_bool(i64(r, "leader") == member), go_bool(bool(r.get("isLearner"))),
                     str(i64(r, "raftTerm")), str(i64(r, "raftIndex")), str(i64(r, "raftAppliedIndex")),
                     ", ".join(r.get("errors", []))])
    return hdr, rows


def hash_rows(hashes: Sequence[EpHash]) -> tuple[list[str], list[list[str]]]:
    return ["endpoint", "hash"], [[h.ep, str(int(h.resp.get("hash", 0)))] for h in hashes]


def health_rows(hs: Sequence[EpHealth]) -> tuple[list[str], list[list[str]]]:
    return ["endpoint", "health", "took", "error"], [[h.ep, go_bool(h.health), h.took, h.error] for h in hs]


def db_rows(ds: DBStatus) -> tuple[list[str], list[list[str]]]:
    return (["hash", "revision", "total keys", "total size"],
            [[f"{ds.hash:x}", str(ds.revision), str(ds.total_key), humanize_bytes(ds.total_size)]])


def render_table(hdr: list[str], rows: list[list[str]]) -> str:
    """tablewriter as etcdctl configures it: upper-case centred headers, right-aligned cells."""
    titles = [h.upper() for h in hdr]
    widths = [max([len(t)] + [len(r[c]) for r in rows]) for c, t in enumerate(titles)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+\n"

    def centre(text: str, width: int) -> str:
        gap = width - len(text)
        left = gap // 2
        return " " * left + text + " " * (gap - left)

    parts = [line, "|" + "|".join(f" {centre(t, w)} " for t, w in zip(titles, widths, strict=True)) + "|\n",
             line]
    for r in rows:
        parts.append("|" + "|".join(f" {c.rjust(w)} " for c, w in zip(r, widths, strict=True)) + "|\n")
    parts.append(line)
    return "".join(parts)


class Printer:
    """The simple format; the other printers override what differs."""

    name = "simple"

    def __init__(self, is_hex: bool = False, value_only: bool = False) -> None:
        self.is_hex = is_hex
        self.value_only = value_only

    def unsupported(self) -> None:
        raise CtlError(f"{self.name} not supported as output format", EXIT_BAD_FEATURE)

    # --- KV -------------------------------------------------------------------------------------
    def kv(self, kv: JSON) -> None:
        key, value = unb64(kv.get("key")), unb64(kv.get("value"))
        if self.is_hex:
            key = "".join(f"\\x{b:02x}" for b in key).encode()
            value = "".join(f"\\x{b:02x}" for b in value).encode()
        if not self.value_only:
            out(key + b"\n")
        out(value + b"\n")

    def get(self, resp: JSON) -> None:
        for kv in resp.get("kvs", []):
            self.kv(kv)

    def put(self, resp: JSON) -> None:
        out("OK\n")
        if resp.get("prev_kv"):
            self.kv(resp["prev_kv"])

    def delete(self, resp: JSON) -> None:
        out(f"{i64(resp, 'deleted')}\n")
        for kv in resp.get("prev_kvs", []):
            self.kv(kv)

    def txn(self, resp: JSON) -> None:
        out("SUCCESS\n" if resp.get("succeeded") else "FAILURE\n")
        for r in resp.get("responses", []):
            out("\n")
            if "response_delete_range" in r:
                self.delete(r["response_delete_range"])
            elif "response_put" in r:
                self.put(r["response_put"])
            elif "response_range" in r:
                self.get(r["response_range"])
            else:
                out(f"unexpected response {r}\n")

    def watch(self, resp: JSON) -> None:
        for ev in resp.get("events", []):
            out(ev.get("type", "PUT") + "\n")
            if ev.get("prev_kv"):
                self.kv(ev["prev_kv"])
            self.kv(ev.get("kv", {}))

    def compaction(self, rev: int, resp: JSON) -> None:
        out(f"compacted revision {rev}\n")

    # --- lease ----------------------------------------------------------------------------------
    def grant(self, resp: JSON) -> None:
        out(f"lease {i64(resp, 'ID'):016x} granted with TTL({i64(resp, 'TTL')}s)\n")

    def revoke(self, lease: int, resp: JSON) -> None:
        out(f"lease {lease:016x} revoked\n")

    def keepalive(self, resp: JSON) -> None:
        out(f"lease {i64(resp, 'ID'):016x} keepalived with TTL({i64(resp, 'TTL')})\n")

    def timetolive(self, resp: JSON, keys: bool) -> None:
        if i64(resp, "grantedTTL") == 0 and i64(resp, "TTL") == -1:
            out(f"lease {i64(resp, 'ID'):016x} already expired\n")
            return
        txt = (f"lease {i64(resp, 'ID'):016x} granted with TTL({i64(resp, 'grantedTTL')}s), "
               f"remaining({i64(resp, 'TTL')}s)")
        if keys:
            names = [unb64(k).decode("utf-8", "surrogateescape") for k in resp.get("keys", [])]
            txt += f", attached keys({go_str_slice(names)})"
        out(txt + "\n")

    def leases(self, resp: JSON) -> None:
        items = resp.get("leases", [])
        out(f"found {len(items)} leases\n")
        for item in items:
            out(f"{i64(item, 'ID'):016x}\n")

    # --- cluster / maintenance ------------------------------------------------------------------
    def alarm(self, resp: JSON) -> None:
        for a in resp.get("alarms", []):
            out(f"memberID:{i64(a, 'memberID')} alarm:{a.get('alarm', 'NONE')} \n")

    def member_add(self, resp: JSON) -> None:
        cluster = i64(resp.get("header"), "cluster_id")
        out(f"Member {i64(resp.get('member'), 'ID'):16x} added to cluster {cluster:16x}\n")

    def member_change(self, verb: str, member: int, resp: JSON) -> None:
        out(f"Member {member:16x} {verb} cluster {i64(resp.get('header'), 'cluster_id'):16x}\n")

    def member_list(self, resp: JSON) -> None:
        for row in member_rows(resp)[1]:
            out(", ".join(row) + "\n")

    def endpoint_health(self, hs: Sequence[EpHealth]) -> None:
        for h in hs:
            if not h.error:
                sys.stderr.write(f"{h.ep} is healthy: successfully committed proposal: took = {h.took}\n")
            else:
                sys.stderr.write(f"{h.ep} is unhealthy: failed to commit proposal: {h.error}\n")

    def endpoint_status(self, statuses: Sequence[EpStatus]) -> None:
        for row in status_rows(statuses)[1]:
            out(", ".join(row) + "\n")

    def endpoint_hashkv(self, hashes: Sequence[EpHash]) -> None:
        for row in hash_rows(hashes)[1]:
            out(", ".join(row) + "\n")

    def db_status(self, ds: DBStatus) -> None:
        for row in db_rows(ds)[1]:
            out(", ".join(row) + "\n")

    def move_leader(self, leader: int, target: int, resp: JSON) -> None:
        out(f"Leadership transferred from {leader:x} to {target:x}\n")

    # --- auth -----------------------------------------------------------------------------------
    def auth_ack(self, text: str, resp: JSON) -> None:
        """Commands whose simple output is one fixed line (user add, role delete, grant...)."""
        out(text + "\n")

    def role_get(self, role: str, resp: JSON) -> None:
        out(f"Role {role}\nKV Read:\n")
        perms = resp.get("perm", [])
        for p in perms:
            if p.get("permType", "READ") in ("READ", "READWRITE"):
                self._perm(p)
        out("KV Write:\n")
        for p in perms:
            if p.get("permType", "READ") in ("WRITE", "READWRITE"):
                self._perm(p)

    def _perm(self, perm: JSON) -> None:
        key = unb64(perm.get("key")).decode("utf-8", "surrogateescape")
        end = unb64(perm.get("range_end")).decode("utf-8", "surrogateescape")
        if not end:
            out(f"\t{key}\n")
            return
        text = f"\t[{key}, {end})" if end != "\x00" else f"\t[{key}, <open ended>"
        if prefix_end(key.encode("utf-8", "surrogateescape")) == end.encode("utf-8", "surrogateescape"):
            text += f" (prefix {key})"
        out(text + "\n")

    def names(self, resp: JSON, field: str) -> None:
        for name in resp.get(field, []):
            out(f"{name}\n")

    def user_get(self, name: str, resp: JSON) -> None:
        out(f"User: {name}\nRoles:" + "".join(f" {r}" for r in resp.get("roles", [])) + "\n")


def prefix_end(key: bytes) -> bytes:
    """clientv3.GetPrefixRangeEnd: the key with its last non-0xff byte incremented, or \\0."""
    end = bytearray(key)
    for idx in range(len(end) - 1, -1, -1):
        if end[idx] < 0xFF:
            end[idx] += 1
            return bytes(end[: idx + 1])
    return b"\x00"


class JsonPrinter(Printer):
    name = "json"

    def emit(self, value: Any) -> None:
        out(dumps(value) + "\n")

    def raw(self, resp: JSON) -> None:
        self.emit(convert(resp))

    get = put = delete = raw  # type: ignore[assignment]

    def compaction(self, rev: int, resp: JSON) -> None:
        Printer.compaction(self, rev, resp)

    def txn(self, resp: JSON) -> None:
        self.emit(convert(_go_txn(resp)))

    def watch(self, resp: JSON) -> None:
        conv = convert(resp)
        self.emit({"Header": conv.get("header", {}), "Events": conv.get("events", []),
                   "CompactRevision": conv.get("compact_revision", 0),
                   "Canceled": bool(conv.get("canceled")), "Created": bool(conv.get("created"))})

    def _flat(self, resp: JSON) -> dict[str, Any]:
        # clientv3's lease responses embed *ResponseHeader, so its fields sit at the top level.
        return dict(convert(resp.get("header", {})))

    def grant(self, resp: JSON) -> None:
        self.emit({**self._flat(resp), "ID": i64(resp, "ID"), "TTL": i64(resp, "TTL"), "Error": ""})

    def revoke(self, lease: int, resp: JSON) -> None:
        self.raw(resp)

    def keepalive(self, resp: JSON) -> None:
        self.emit({**self._flat(resp), "ID": i64(resp, "ID"), "TTL": i64(resp, "TTL")})

    def timetolive(self, resp: JSON, keys: bool) -> None:
        self.emit({**self._flat(resp), "id": i64(resp, "ID"), "ttl": i64(resp, "TTL"),
                   "granted-ttl": i64(resp, "grantedTTL"), "keys": resp.get("keys") or None})

    def leases(self, resp: JSON) -> None:
        self.emit({**self._flat(resp), "leases": [{"id": i64(x, "ID")} for x in resp.get("leases", [])]})

    def alarm(self, resp: JSON) -> None:
        self.raw(resp)

    def member_add(self, resp: JSON) -> None:
        self.raw(resp)

    def member_change(self, verb: str, member: int, resp: JSON) -> None:
        self.raw(resp)

    member_list = raw  # type: ignore[assignment]

    def endpoint_health(self, hs: Sequence[EpHealth]) -> None:
        items: list[dict[str, Any]] = []
        for h in hs:
            item: dict[str, Any] = {"endpoint": h.ep, "health": h.health, "took": h.took}
            if h.error:
                item["error"] = h.error
            items.append(item)
        self.emit(items)

    def endpoint_status(self, statuses: Sequence[EpStatus]) -> None:
        self.emit([{"Endpoint": s.ep, "Status": convert(s.resp)} for s in statuses])

    def endpoint_hashkv(self, hashes: Sequence[EpHash]) -> None:
        self.emit([{"Endpoint": h.ep, "HashKV": convert(h.resp)} for h in hashes])

    def db_status(self, ds: DBStatus) -> None:
        self.emit({"hash": ds.hash, "revision": ds.revision, "totalKey": ds.total_key,
                   "totalSize": ds.total_size})

    def move_leader(self, leader: int, target: int, resp: JSON) -> None:
        self.raw(resp)

    def auth_ack(self, text: str, resp: JSON) -> None:
        self.raw(resp)

    def role_get(self, role: str, resp: JSON) -> None:
        self.raw(resp)

    def names(self, resp: JSON, field: str) -> None:
        self.raw(resp)

    def user_get(self, name: str, resp: JSON) -> None:
        self.raw(resp)


def _go_txn(resp: JSON) -> JSON:
    """A TxnResponse as Go marshals it: the ResponseOp oneof becomes {"Response":{"ResponsePut":…}}."""
    names = {"response_range": "ResponseRange", "response_put": "ResponsePut",
             "response_delete_range": "ResponseDeleteRange", "response_txn": "ResponseTxn"}
    result: JSON = {}
    for key, value in resp.items():
        if key == "responses":
            ops = []
            for op in value:
                kind, body = next(iter(op.items()))
                if kind == "response_txn":
                    body = _go_txn(body)
                ops.append({"Response": {names[kind]: body}})
            result[key] = ops
        else:
            result[key] = value
    return result


class YamlPrinter(JsonPrinter):
    """etcdpyctl's extension: the json format's structure as YAML (block style, keys in order)."""

    name = "yaml"

    def emit(self, value: Any) -> None:
        out(yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True))


class FieldsPrinter(Printer):
    name = "fields"

    def hdr(self, h: JSON | None) -> None:
        out(f'"ClusterID" : {i64(h, "cluster_id")}\n"MemberID" : {i64(h, "member_id")}\n'
            f'"Revision" : {i64(h, "revision")}\n"RaftTerm" : {i64(h, "raft_term")}\n')

    def kv(self, kv: JSON, pfx: str = "") -> None:
        out(f'"{pfx}Key" : {go_quote(unb64(kv.get("key")))}\n'
            f'"{pfx}CreateRevision" : {i64(kv, "create_revision")}\n'
            f'"{pfx}ModRevision" : {i64(kv, "mod_revision")}\n'
            f'"{pfx}Version" : {i64(kv, "version")}\n'
            f'"{pfx}Value" : {go_quote(unb64(kv.get("value")))}\n'
            f'"{pfx}Lease" : {i64(kv, "lease")}\n')

    def get(self, resp: JSON) -> None:
        self.hdr(resp.get("header"))
        for kv in resp.get("kvs", []):
            self.kv(kv)
        out(f'"More" : {go_bool(bool(resp.get("more")))}\n"Count" : {i64(resp, "count")}\n')

    def put(self, resp: JSON) -> None:
        self.hdr(resp.get("header"))
        if resp.get("prev_kv"):
            self.kv(resp["prev_kv"], "Prev")

    def delete(self, resp: JSON) -> None:
        self.hdr(resp.get("header"))
        out(f'"Deleted" : {i64(resp, "deleted")}\n')
        for kv in resp.get("prev_kvs", []):
            self.kv(kv, "Prev")

    def txn(self, resp: JSON) -> None:
        self.hdr(resp.get("header"))
        out(f'"Succeeded" : {go_bool(bool(resp.get("succeeded")))}\n')
        for r in resp.get("responses", []):
            if "response_delete_range" in r:
                self.delete(r["response_delete_range"])
            elif "response_put" in r:
                self.put(r["response_put"])
            elif "response_range" in r:
                self.get(r["response_range"])

    def watch(self, resp: JSON) -> None:
        self.hdr(resp.get("header"))
        for ev in resp.get("events", []):
            out(f'"Type" : {ev.get("type", "PUT")}\n')
            if ev.get("prev_kv"):
                self.kv(ev["prev_kv"], "Prev")
            self.kv(ev.get("kv", {}))

    def grant(self, resp: JSON) -> None:
        self.hdr(resp.get("header"))
        out(f'"ID" : {i64(resp, "ID")}\n"TTL" : {i64(resp, "TTL")}\n')

    keepalive = grant  # type: ignore[assignment]

    def revoke(self, lease: int, resp: JSON) -> None:
        self.hdr(resp.get("header"))

    def timetolive(self, resp: JSON, keys: bool) -> None:
        self.hdr(resp.get("header"))
        out(f'"ID" : {i64(resp, "ID")}\n"TTL" : {i64(resp, "TTL")}\n'
            f'"GrantedTTL" : {i64(resp, "grantedTTL")}\n')
        for k in resp.get("keys", []):
            out(f'"Key" : {go_quote(unb64(k))}\n')

    def leases(self, resp: JSON) -> None:
        self.hdr(resp.get("header"))
        for item in resp.get("leases", []):
            out(f'"ID" : {i64(item, "ID")}\n')

    def alarm(self, resp: JSON) -> None:
        # etcdctl 3.4 dereferences the (absent) alarm header and panics; refuse cleanly instead.
        self.unsupported()

    def member_add(self, resp: JSON) -> None:
        self.unsupported()

    def member_change(self, verb: str, member: int, resp: JSON) -> None:
        self.unsupported()

    def member_list(self, resp: JSON) -> None:
        self.hdr(resp.get("header"))
        for m in resp.get("members", []):
            out(f'"ID" : {i64(m, "ID")}\n"Name" : {go_quote(m.get("name", ""))}\n')
            for u in m.get("peerURLs", []):
                out(f'"PeerURL" : {go_quote(u)}\n')
            for u in m.get("clientURLs", []):
                out(f'"ClientURL" : {go_quote(u)}\n')
            out(f'"IsLearner" : {go_bool(bool(m.get("isLearner")))}\n\n')

    def endpoint_health(self, hs: Sequence[EpHealth]) -> None:
        for h in hs:
            out(f'"Endpoint" : {go_quote(h.ep)}\n"Health" : {go_bool(h.health)}\n"Took" : {h.took}\n'
                f'"Error" : {h.error}\n\n')

    def endpoint_status(self, statuses: Sequence[EpStatus]) -> None:
        for st in statuses:
            r = st.resp
            self.hdr(r.get("header"))
            out(f'"Version" : {go_quote(r.get("version", ""))}\n"DBSize" : {i64(r, "dbSize")}\n'
                f'"Leader" : {i64(r, "leader")}\n"IsLearner" : {go_bool(bool(r.get("isLearner")))}\n'
                f'"RaftIndex" : {i64(r, "raftIndex")}\n"RaftTerm" : {i64(r, "raftTerm")}\n'
                f'"RaftAppliedIndex" : {i64(r, "raftAppliedIndex")}\n'
                f'"Errors" : {go_str_slice(r.get("errors", []))}\n"Endpoint" : {go_quote(st.ep)}\n\n')

    def endpoint_hashkv(self, hashes: Sequence[EpHash]) -> None:
        for h in hashes:
            self.hdr(h.resp.get("header"))
            out(f'"Endpoint" : {go_quote(h.ep)}\n"Hash" : {int(h.resp.get("hash", 0))}\n\n')

    def db_status(self, ds: DBStatus) -> None:
        out(f'"Hash" : {ds.hash}\n"Revision" : {ds.revision}\n"Keys" : {ds.total_key}\n'
            f'"Size" : {ds.total_size}\n')

    def move_leader(self, leader: int, target: int, resp: JSON) -> None:
        self.unsupported()

    def auth_ack(self, text: str, resp: JSON) -> None:
        self.hdr(resp.get("header"))

    def role_get(self, role: str, resp: JSON) -> None:
        self.hdr(resp.get("header"))
        for p in resp.get("perm", []):
            out(f'"PermType" :  {p.get("permType", "READ")}\n"Key" : {go_quote(unb64(p.get("key")))}\n'
                f'"RangeEnd" : {go_quote(unb64(p.get("range_end")))}\n')

    def names(self, resp: JSON, field: str) -> None:
        if field != "roles":
            self.unsupported()  # etcdctl 3.4 has no fields form of user list
        self.hdr(resp.get("header"))
        out('"Roles" :' + "".join(f" {go_quote(n)}" for n in resp.get(field, [])) + "\n")

    def user_get(self, name: str, resp: JSON) -> None:
        self.unsupported()


class TablePrinter(Printer):
    name = "table"

    def _unsupported(self, *args: Any, **kwargs: Any) -> None:
        self.unsupported()

    get = put = delete = txn = watch = grant = keepalive = leases = _unsupported  # type: ignore[assignment]
    revoke = timetolive = alarm = member_add = member_change = move_leader = _unsupported  # type: ignore
    auth_ack = role_get = names = user_get = _unsupported  # type: ignore[assignment]

    def member_list(self, resp: JSON) -> None:
        out(render_table(*member_rows(resp)))

    def endpoint_health(self, hs: Sequence[EpHealth]) -> None:
        out(render_table(*health_rows(hs)))

    def endpoint_status(self, statuses: Sequence[EpStatus]) -> None:
        out(render_table(*status_rows(statuses)))

    def endpoint_hashkv(self, hashes: Sequence[EpHash]) -> None:
        out(render_table(*hash_rows(hashes)))

    def db_status(self, ds: DBStatus) -> None:
        out(render_table(*db_rows(ds)))


FORMATS: dict[str, type[Printer]] = {
    "simple": Printer, "json": JsonPrinter, "fields": FieldsPrinter, "table": TablePrinter,
    "yaml": YamlPrinter,
}


def make_printer(fmt: str, is_hex: bool, value_only: bool = False) -> Printer:
    cls = FORMATS.get(fmt)
    if cls is None:
        raise CtlError("unsupported output format", EXIT_BAD_FEATURE)
    return cls(is_hex=is_hex, value_only=value_only)
