"""Keys, values and request bodies shared by the Python drivers and the generated Lua scripts.

Keys are zero-padded decimal indexes of exactly --key-size bytes so that Python (prefill, loader) and
Lua (wrk) derive the same key from the same index without sharing state.
"""

from __future__ import annotations

import base64
import random


def key_bytes(index: int, key_size: int) -> bytes:
    k = str(index).zfill(key_size).encode()
    if len(k) > key_size:
        raise ValueError(f"--key-size {key_size} too small for key space index {index}")
    return k


def check_key_space(key_space: int, key_size: int) -> None:
    key_bytes(max(0, key_space - 1), key_size)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def value_bytes(val_size: int, seed: int) -> bytes:
    """A fixed random printable value; etcd's own benchmark also reuses one value for every put."""
    rng = random.Random(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return bytes(rng.choice(alphabet) for _ in range(val_size))


def txn_put_body(keys_b64: list[str], value_b64: str) -> bytes:
    """One txn putting every key (≤ 128, etcd's --max-txn-ops); built by hand because it is hot."""
    ops = ",".join(f'{{"request_put":{{"key":"{k}","value":"{value_b64}"}}}}' for k in keys_b64)
    return f'{{"success":[{ops}]}}'.encode()
