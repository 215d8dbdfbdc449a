"""put / range / deleterange cases (gateway-api.md §5.1-5.3)."""

from __future__ import annotations

from typing import Any

from tests.conformance.harness import Keys, Registry, Step, b64
from tests.conformance.steps import delete, grant, lease_id, post, put, rng

SORT_ORDERS = ("NONE", "ASCEND", "DESCEND")
SORT_TARGETS = ("KEY", "VERSION", "CREATE", "MOD", "VALUE")


def sort_fixture(k: Keys) -> list[Step]:
    """Three keys whose orders differ per target (no ties, so any correct sort is deterministic):
    KEY a,b,c · CREATE b,a,c · MOD c,a,b · VERSION c,a,b · VALUE b,c,a."""
    return [put(k("b"), "x"), put(k("a"), "y"), put(k("b"), "z"), put(k("c"), "2"), put(k("a"), "3"),
            put(k("b"), "1")]


def four_keys(k: Keys) -> list[Step]:
    return [put(k("a"), "1"), put(k("b"), "2"), put(k("c"), "3"), put(k("a"), "4")]


def register(reg: Registry) -> None:
    reg.add("put-range-basic", lambda k: [put(k("a"), "v1"), rng(k("a"))])
    reg.add("put-overwrite-version", lambda k: [put(k("a"), "v1"), put(k("a"), "v2"), put(k("a"), "v3"),
                                                 rng(k("a"))])
    reg.add("put-empty-value", lambda k: [put(k("a")), put(k("b"), ""), rng(k(), range_end=k.end)],
            "an empty value is omitted from the KeyValue")
    reg.add("range-missing-key", lambda k: [rng(k("nope")), rng(k("nope"), count_only=True)],
            "no match → header only, no kvs and no count")
    reg.add("range-prefix", lambda k: [put(k("a"), "1"), put(k("b"), "2"), put(b64(k.raw() + "zz"), "out"),
                                       put(b64(k.prefix + "0"), "out"), rng(k(), range_end=k.end)])
    reg.add("range-end-nul-from-key", lambda k: [put(k("a"), "1"), put(k("b"), "2"), put(b64(k.prefix), "0"),
                                                 rng(k("b"), range_end="AA==")],
            "range_end \\0 means every key >= key")
    reg.add("range-whole-keyspace", lambda k: [put(k("a"), "1"), put(b64("\x01x"), "2"), put(b64("zzz"), "3"),
                                               rng("AA==", range_end="AA=="),
                                               rng("AA==", range_end="AA==", keys_only=True)])
    reg.add("range-end-not-after-key", lambda k: [put(k("a"), "1"), put(k("b"), "2"),
                                                  rng(k("b"), range_end=k("a")),
                                                  rng(k("b"), range_end=k("b"))],
            "range_end <= key selects nothing")
    reg.add("range-limit", lambda k: [*four_keys(k),
                                      *(rng(k(), range_end=k.end, limit=n) for n in (2, 3, 4, 0, -1))],
            "more only when truncated; count counts before the limit; limit <= 0 means none")
    reg.add("range-count-only", lambda k: [*four_keys(k), rng(k(), range_end=k.end, count_only=True),
                                           rng(k(), range_end=k.end, count_only=True, limit=1),
                                           rng(k("zz"), count_only=True)])
    reg.add("range-keys-only", lambda k: [*four_keys(k), rng(k(), range_end=k.end, keys_only=True),
                                          rng(k(), range_end=k.end, keys_only=True, count_only=True)])
    for order in SORT_ORDERS:
        for target in SORT_TARGETS:
            fields: dict[str, Any] = {}
            if order != "NONE":
                fields["sort_order"] = order
            if target != "KEY":
                fields["sort_target"] = target

            def make(k: Keys, fields: dict[str, Any] = fields) -> list[Step]:
                return [*sort_fixture(k), rng(k(), range_end=k.end, **fields),
                        rng(k(), range_end=k.end, limit=2, **fields)]

            why = "a target without an order sorts ascending by that target" if order == "NONE" else ""
            reg.add(f"range-sort-{order.lower()}-{target.lower()}", make, why)
    reg.add("range-sort-by-number", lambda k: [*sort_fixture(k), rng(k(), range_end=k.end, sort_order=2,
                                                                     sort_target=3)],
            "enums by number: DESCEND=2, MOD=3")
    reg.add("range-mod-revision-filters", lambda k: [
        *four_keys(k),
        rng(k(), range_end=k.end, min_mod_revision="${rev+3}"),
        rng(k(), range_end=k.end, max_mod_revision="${rev+2}"),
        rng(k(), range_end=k.end, min_mod_revision="${rev+2}", max_mod_revision="${rev+3}", limit=1),
    ], "filters drop kvs but count still counts every match")
    reg.add("range-create-revision-filters", lambda k: [
        *four_keys(k),
        rng(k(), range_end=k.end, min_create_revision="${rev+2}"),
        rng(k(), range_end=k.end, max_create_revision="${rev+1}"),
        rng(k(), range_end=k.end, min_create_revision="${rev+2}", max_create_revision="${rev+2}"),
    ])
    reg.add("range-filter-sort-limit", lambda k: [
        *sort_fixture(k),
        rng(k(), range_end=k.end, min_create_revision="${rev+2}", sort_order="DESCEND",
            sort_target="VALUE", limit=1),
        rng(k(), range_end=k.end, max_mod_revision="${rev+5}", sort_target="CREATE", limit=1),
    ], "filters, sort and limit together: which kvs survive, and whether 'more' is set")
    reg.add("range-old-revision", lambda k: [*four_keys(k), delete(k("b")),
                                             rng(k(), range_end=k.end, revision="${rev+1}"),
                                             rng(k(), range_end=k.end, revision="${rev+4}"),
                                             rng(k(), range_end=k.end, revision=0)],
            "header shows the current revision, kvs the old state")
    reg.add("range-future-revision", lambda k: [put(k("a"), "1"),
                                                rng(k("a"), revision="${rev+2}", expect=400),
                                                rng(k("a"), revision="${rev+1}")])
    reg.add("range-serializable", lambda k: [put(k("a"), "1"), rng(k("a"), serializable=True),
                                             rng(k(), range_end=k.end, serializable=True, count_only=True)])
    reg.add("put-prev-kv", lambda k: [put(k("a"), "1", prev_kv=True), put(k("a"), "2", prev_kv=True),
                                      put(k("a"), "3")],
            "prev_kv only when the key existed")
    reg.add("put-ignore-value", lambda k: [put(k("a"), "1"), put(k("a"), ignore_value=True, prev_kv=True),
                                           rng(k("a"))])
    reg.add("put-ignore-value-errors", lambda k: [
        put(k("a"), ignore_value=True, expect=400),
        put(k("b"), "1"),
        put(k("b"), "2", ignore_value=True, expect=400),
    ], "key not found; value is provided")

    def with_lease(k: Keys) -> list[Step]:
        lease = lease_id(k)
        return [grant(lease), put(k("a"), "1", lease=lease), rng(k("a")),
                put(k("a"), "2", ignore_lease=True, prev_kv=True), rng(k("a")),
                put(k("a"), ignore_value=True), rng(k("a")),
                put(k("a"), "3", lease=lease),
                put(k("a"), "4", lease=str(lease), ignore_lease=True, expect=400),
                put(k("nope"), ignore_lease=True, expect=400), rng(k("a"))]

    reg.add("put-lease-ignore-lease", with_lease,
            "ignore_lease keeps the lease; ignore_value without lease detaches it; error cases")
    reg.add("put-unknown-lease", lambda k: [put(k("a"), "1", lease=12345, expect=404),
                                            put(k("a"), "1", lease=0)])
    reg.add("delete-single", lambda k: [*four_keys(k), delete(k("b")), delete(k("b"))],
            "a delete that matched nothing has no 'deleted' and creates no revision")
    reg.add("delete-range-prev-kv", lambda k: [*four_keys(k), put(b64(k.prefix + "0"), "out"),
                                               delete(k("b"), range_end=k.end, prev_kv=True)])
    reg.add("delete-range-count", lambda k: [*four_keys(k), delete(k(), range_end=k.end)])
    reg.add("delete-no-match-prev-kv", lambda k: [delete(k("x"), prev_kv=True),
                                                  delete(k("x"), range_end=k.end, prev_kv=True)])
    reg.add("delete-whole-keyspace", lambda k: [*four_keys(k),
                                                delete("AA==", range_end="AA==", prev_kv=True)])
    reg.add("delete-from-key", lambda k: [*four_keys(k), delete(k("b"), range_end="AA==")])
    reg.add("put-binary-key-value", lambda k: [
        post("/v3/kv/put", {"key": b64(b"\x00\xff/+\xfe" + k.prefix.encode()),
                            "value": b64(b"\xfb\xff\xbf\x00")}),
        rng("AA==", range_end="AA==", keys_only=True)], "base64 with '+' and '/', NUL and 0xff bytes")
    reg.add("put-same-value-twice", lambda k: [put(k("a"), "1"), put(k("a"), "1", prev_kv=True), rng(k("a"))],
            "an unchanged value still makes a revision and a version")
    reg.add("delete-range-end-before-key", lambda k: [*four_keys(k), delete(k("c"), range_end=k("a")),
                                                      delete(k("b"), range_end=k("b"), prev_kv=True)])
    reg.add("range-sort-keys-only-limit", lambda k: [
        *sort_fixture(k), rng(k(), range_end=k.end, keys_only=True, limit=2, sort_order="DESCEND",
                              sort_target="VALUE")])
    reg.add("empty-key-errors", lambda k: [put("", "1", expect=400), rng("", expect=400),
                                           delete("", expect=400)],
            "etcdserver: key is not provided")
    reg.add("missing-key-errors", lambda k: [
        Step("/v3/kv/put", {"value": b64("1")}, expect=400), Step("/v3/kv/range", {"limit": 1}, expect=400),
        Step("/v3/kv/deleterange", {"prev_kv": True}, expect=400)])
