"""All conformance cases, in a stable order (ids are unique across modules)."""

from tests.conformance.cases import decoding, inputs, kv, maintenance, txn
from tests.conformance.harness import Case, Registry


def _collect() -> list[Case]:
    reg = Registry()
    for module in (kv, txn, inputs, decoding, maintenance):
        module.register(reg)
    return reg.cases


ALL_CASES: list[Case] = _collect()
