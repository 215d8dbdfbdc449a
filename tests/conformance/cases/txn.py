"""txn and compaction cases (gateway-api.md §5.4, §5.5)."""

from __future__ import annotations

from typing import Any

from tests.conformance.harness import Keys, Registry, Step, b64
from tests.conformance.steps import (
    cmp,
    compact,
    delete,
    grant,
    lease_id,
    op_delete,
    op_put,
    op_range,
    op_txn,
    put,
    rng,
    txn,
)

RESULTS = ("EQUAL", "NOT_EQUAL", "GREATER", "LESS")
MAX_TXN_OPS = 128


def operands(target: str, lease: int) -> tuple[str, tuple[Any, Any, Any]]:
    """The compare field for ``target`` and (equal, lower, higher) operands for key 'a' as set up below."""
    table: dict[str, tuple[str, tuple[Any, Any, Any]]] = {
        "VERSION": ("version", ("2", "1", "3")),
        "CREATE": ("create_revision", ("${rev+1}", "${rev}", "${rev+2}")),
        "MOD": ("mod_revision", ("${rev+2}", "${rev+1}", "${rev+3}")),
        "VALUE": ("value", (b64("m"), b64("a"), b64("z"))),
        "LEASE": ("lease", (str(lease), str(lease - 1), str(lease + 1))),
    }
    return table[target]


def compare_case(target: str, result: str) -> Any:
    def make(k: Keys) -> list[Step]:
        lease = lease_id(k)
        name, values = operands(target, lease)
        # 'a': created at rev+1, modified at rev+2, version 2, value "m"; attached to a lease only for
        # the LEASE target, so the other targets do not depend on the lease API.
        attach = {"lease": lease} if target == "LEASE" else {}
        steps = [grant(lease)] if attach else []
        steps += [put(k("a"), "x", **attach), put(k("a"), "m", **attach)]
        for value in values:
            steps.append(txn([cmp(k("a"), target, result, **{name: value})],
                             [op_range(k("a"), count_only=True)], [op_range(k("nope"))]))
        return steps

    return make


def many_puts(k: Keys, n: int) -> list[dict[str, Any]]:
    return [op_put(k(f"{i:03}"), "v") for i in range(n)]


def register(reg: Registry) -> None:
    for target in ("VERSION", "CREATE", "MOD", "VALUE", "LEASE"):
        for result in RESULTS:
            reg.add(f"txn-compare-{target.lower()}-{result.lower().replace('_', '-')}",
                    compare_case(target, result), "operand equal to, below and above the stored one")
    reg.add("txn-compare-range-end", lambda k: [
        put(k("a"), "1"), put(k("b"), "1"), put(k("b"), "2"),
        txn([cmp(k(), "VERSION", "GREATER", version="0", range_end=k.end)], [op_range(k(), range_end=k.end)]),
        txn([cmp(k(), "VALUE", "EQUAL", value=b64("1"), range_end=k.end)], [], [op_range(k("a"))]),
        txn([cmp(k("a"), "MOD", "LESS", mod_revision="${rev+4}", range_end="AA==")], [op_put(k("c"), "3")]),
    ], "a compare over a range must hold for every key in it")
    reg.add("txn-compare-empty-range", lambda k: [
        txn([cmp(k(), "VERSION", "EQUAL", version=0, range_end=k.end)], [op_put(k("a"), "1")]),
        txn([cmp(k("x"), "VALUE", "NOT_EQUAL", value=b64("1"), range_end=k("y"))], [op_put(k("b"), "1")],
            [op_put(k("c"), "1")]),
    ], "a compare over a range holding no key: as for a missing key")
    reg.add("txn-compare-value-missing-key", lambda k: [
        txn([cmp(k("nope"), "VALUE", result, value=b64("x"))], [op_put(k("hit"), result)])
        for result in RESULTS
    ], "a VALUE compare on a missing key is false whatever the operator")
    reg.add("txn-create-if-absent", lambda k: [
        txn([cmp(k("a"), "CREATE", "EQUAL", create_revision="0")], [op_put(k("a"), "first")],
            [op_range(k("a"))]),
        txn([cmp(k("a"), "CREATE", "EQUAL", create_revision="0")], [op_put(k("a"), "second")],
            [op_range(k("a"))]),
        txn([cmp(k("missing"), "VERSION", "EQUAL", version=0),
             cmp(k("missing"), "MOD", "LESS", mod_revision=1),
             cmp(k("missing"), "LEASE", "EQUAL", lease=0)], [op_range(k("missing"))]),
    ], "a missing key compares as version/create/mod/lease 0")
    reg.add("txn-empty", lambda k: [txn(), Step("/v3/kv/txn", b"{}")],
            "an empty txn succeeds, writes nothing")
    reg.add("txn-success-branch", lambda k: [
        put(k("a"), "v1"),
        txn([cmp(k("a"), "VALUE", "EQUAL", value=b64("v1"))],
            [op_put(k("a"), "v2", prev_kv=True), op_range(k("a")), op_delete(k("b"), prev_kv=True)],
            [op_range(k("a"))]),
    ])
    reg.add("txn-failure-branch", lambda k: [
        put(k("a"), "v1"), put(k("b"), "v1"),
        txn([cmp(k("a"), "VALUE", "EQUAL", value=b64("other"))], [op_put(k("a"), "never")],
            [op_range(k("a")), op_delete(k("b"), prev_kv=True), op_put(k("c"), "c", prev_kv=True)]),
    ], "a failed txn has no 'succeeded' field")
    reg.add("txn-range-then-put", lambda k: [
        put(k("a"), "1"),
        txn([], [op_range(k("a")), op_put(k("a"), "2"), op_range(k("a")),
                 op_range(k("a"), revision="${rev+1}")]),
    ], "the range before the put shows the old revision in its header")
    reg.add("txn-read-only-no-revision", lambda k: [
        put(k("a"), "1"), txn([], [op_range(k("a")), op_range(k("b"))]), txn([], [op_delete(k("zz"))]),
    ], "txns that change nothing create no revision")
    reg.add("txn-nested", lambda k: [
        put(k("a"), "1"),
        txn([cmp(k("a"), "VERSION", "EQUAL", version=1)],
            [op_txn([cmp(k("a"), "VALUE", "EQUAL", value=b64("1"))],
                    [op_put(k("b"), "2"), op_range(k("a"))], [op_range(k("b"))]),
             op_range(k("b"))]),
        txn([], [op_txn(), op_txn([cmp(k("a"), "VERSION", "GREATER", version=5)], [], [op_delete(k("b"))])]),
    ], "a nested response_txn has an empty header object")
    reg.add("txn-duplicate-put", lambda k: [
        txn([], [op_put(k("a"), "1"), op_put(k("a"), "2")], expect=400),
        txn([], [], [op_put(k("a"), "1"), op_put(k("a"), "2")], expect=400),
    ], "the check applies to both branches whichever one would run")
    reg.add("txn-duplicate-put-delete", lambda k: [
        txn([], [op_delete(k(), range_end=k.end), op_put(k("a"), "1")], expect=400),
        txn([], [op_put(k("a"), "1"), op_delete(k("a"))], expect=400),
    ])
    reg.add("txn-overlap-allowed", lambda k: [
        put(k("a"), "0"),
        txn([], [op_range(k("a")), op_put(k("a"), "1"), op_range(k("a"))]),
        txn([], [op_delete(k(), range_end=k.end), op_delete(k("a"))]),
        txn([], [op_put(k("a"), "1")], [op_put(k("a"), "2")]),
    ], "range+put of one key, two deletes, and the same key in both branches are fine")
    reg.add("txn-duplicate-nested", lambda k: [
        txn([], [op_put(k("a"), "1"), op_txn([], [op_put(k("a"), "2")])], expect=400),
        txn([], [op_txn([], [op_put(k("a"), "1")], [op_put(k("a"), "2")])]),
    ])
    reg.add("txn-128-ops", lambda k: [txn([], many_puts(k, MAX_TXN_OPS)),
                                      rng(k(), range_end=k.end, count_only=True)],
            "128 writes share one revision")
    reg.add("txn-129-ops", lambda k: [
        txn([], many_puts(k, MAX_TXN_OPS + 1), expect=400),
        txn([], [], many_puts(k, MAX_TXN_OPS + 1), expect=400),
        txn([cmp(k(f"{i}"), "VERSION", "EQUAL", version=0) for i in range(MAX_TXN_OPS + 1)], expect=400),
    ], "too many operations in txn request, for each of success, failure and compare")
    reg.add("txn-empty-op", lambda k: [txn([], [{}], expect=400), txn([], [], [{}], expect=400)],
            "a RequestOp with no request: key not found")
    reg.add("txn-empty-keys", lambda k: [
        txn([], [op_put("", "1")], expect=400),
        txn([], [op_range("")], expect=400),
        txn([cmp("", "VERSION", "EQUAL", version=0)], expect=400),
    ], "key is not provided inside ops and compares")
    reg.add("txn-enums-by-number", lambda k: [
        put(k("a"), "1"),
        txn([{"key": k("a"), "target": 0, "result": 1, "version": "0"}], [op_range(k("a"))]),
        txn([{"key": k("a"), "target": 3, "result": 3, "value": b64("1")}], [op_range(k("a"))]),
    ], "target VERSION=0 with result GREATER=1; target VALUE=3 with result NOT_EQUAL=3")
    reg.add("txn-ops-with-options", lambda k: [
        put(k("a"), "1"), put(k("b"), "2"), put(k("c"), "3"),
        txn([], [op_range(k(), range_end=k.end, limit=1, sort_order="DESCEND"),
                 op_range(k(), range_end=k.end, keys_only=True),
                 op_range(k(), range_end=k.end, count_only=True),
                 op_delete(k("b"), range_end=k.end, prev_kv=True), op_put(k("a"), "x", prev_kv=True)]),
    ])
    reg.add("txn-put-unknown-lease", lambda k: [txn([], [op_put(k("a"), "1", lease=777)], expect=404)])
    reg.add("txn-range-future-revision", lambda k: [
        put(k("a"), "1"), txn([], [op_range(k("a"), revision="${rev+5}")], expect=400)])
    register_compaction(reg)


def register_compaction(reg: Registry) -> None:
    def basic(k: Keys) -> list[Step]:
        return [put(k("a"), "1"), put(k("a"), "2"), put(k("a"), "3"),
                compact("${rev+2}"),
                rng(k("a"), revision="${rev+1}", expect=400),
                rng(k("a"), revision="${rev+2}"),
                txn([], [op_range(k("a"), revision="${rev+1}")], expect=400),
                compact("${rev+2}", expect=400),
                compact("${rev+1}", expect=400)]

    reg.add("compaction-basic", basic, "reading at the compaction revision works, below it fails; "
                                       "compacting again at or below it fails")
    reg.add("compaction-future", lambda k: [put(k("a"), "1"), compact("${rev+2}", expect=400),
                                            compact("${rev+1}")])
    reg.add("compaction-physical", lambda k: [put(k("a"), "1"), put(k("a"), "2"),
                                              compact("${rev+1}", physical=True), rng(k("a")),
                                              rng(k("a"), revision="${rev+1}")])
    reg.add("compaction-zero", lambda k: [put(k("a"), "1"), compact("${rev+1}"),
                                          Step("/v3/kv/compaction", "{}", expect=400),
                                          compact(-1, expect=400)],
            "revision 0 (the default) and below are at or under the compaction point just made")
    reg.add("compaction-at-current", lambda k: [put(k("a"), "1"), delete(k("a")), compact("${rev+2}"),
                                                rng(k("a"), revision="${rev+2}")],
            "compacting at the current revision, right after a delete")
