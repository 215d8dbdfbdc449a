"""Lock and election calls, real etcd 3.4 vs etcdpy: every call and error (cases.py), and the blocking
calls in concurrent scenarios: a waiter released by an unlock or a resign, a waiter whose client goes
away, and an observer's stream. Each scenario runs on both servers and the normalised transcripts must
be identical."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conformance.harness import Case, Target, assert_matches, b64, normalise
from tests.coord.cases import CASES
from tests.stream_client import StreamConn

WAIT_S = 10.0


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_call_matches_etcd(case: Case, reference: Target, candidate: Target) -> None:
    assert_matches(case, reference, candidate)


# ---------------------------------------------------------------- concurrent scenarios


@dataclass
class Run:
    """One scenario on one server: its transcript of normalised answers."""

    target: Target
    pool: ThreadPoolExecutor
    baseline: int = 0
    transcript: list[str] = field(default_factory=list)

    def call(self, path: str, body: dict[str, Any], timeout: float = WAIT_S) -> httpx.Response:
        return self.target.client.post(self.target.url + path, json=body, timeout=timeout)

    def record(self, label: str, resp: httpx.Response) -> dict[str, Any]:
        body = normalise(resp.content, self.baseline).decode()
        self.transcript.append(f"{label}: {resp.status_code} {body}")
        data: dict[str, Any] = resp.json()
        return data

    def rpc(self, label: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.record(label, self.call(path, body))

    def later(self, path: str, body: dict[str, Any], timeout: float = WAIT_S) -> Future[httpx.Response]:
        return self.pool.submit(self.call, path, body, timeout)

    def keys(self, prefix: str) -> list[str]:
        body = {"key": b64(prefix), "range_end": b64(prefix[:-1] + chr(ord(prefix[-1]) + 1))}
        return [kv["key"] for kv in self.call("/v3/kv/range", body).json().get("kvs", [])]

    def wait_keys(self, prefix: str, n: int) -> None:
        """Until `n` contenders are queued under the prefix (their keys exist before they wait)."""
        deadline = time.monotonic() + WAIT_S
        while len(self.keys(prefix)) != n:
            assert time.monotonic() < deadline, f"{n} keys under {prefix!r} never appeared"
            time.sleep(0.02)

    def state(self, prefix: str) -> None:
        body = {"key": b64(prefix), "range_end": b64(prefix[:-1] + chr(ord(prefix[-1]) + 1))}
        self.rpc("state", "/v3/kv/range", body)


Scenario = Callable[[Run], None]


def _run(target: Target, scenario: Scenario) -> list[str]:
    with ThreadPoolExecutor(4) as pool:
        run = Run(target, pool)
        run.baseline = target.reset()
        scenario(run)
        return run.transcript


def _compare(scenario: Scenario, reference: Target, candidate: Target) -> None:
    want = _run(reference, scenario)
    got = _run(candidate, scenario)
    assert got == want


def _grant(run: Run, *leases: int) -> None:
    for lease in leases:
        run.call("/v3/lease/grant", {"ID": lease, "TTL": 600}).raise_for_status()


def lock_handover(run: Run) -> None:
    _grant(run, 0x71, 0x72, 0x73)
    name = b64("hand")
    run.rpc("first", "/v3/lock/lock", {"name": name, "lease": 0x71})
    second = run.later("/v3/lock/lock", {"name": name, "lease": 0x72})
    run.wait_keys("hand/", 2)
    third = run.later("/v3/lock/lock", {"name": name, "lease": 0x73})
    run.wait_keys("hand/", 3)
    run.rpc("unlock first", "/v3/lock/unlock", {"key": b64("hand/71")})
    run.record("second", second.result())
    run.rpc("unlock second", "/v3/lock/unlock", {"key": b64("hand/72")})
    run.record("third", third.result())
    run.state("hand/")


def lock_waiter_goes_away(run: Run) -> None:
    _grant(run, 0x81, 0x82)
    name = b64("gone")
    run.rpc("holder", "/v3/lock/lock", {"name": name, "lease": 0x81})
    waiter = run.later("/v3/lock/lock", {"name": name, "lease": 0x82}, timeout=0.5)
    run.wait_keys("gone/", 2)
    with pytest.raises(httpx.TimeoutException):
        waiter.result()
    run.wait_keys("gone/", 1)  # the waiter's key is taken out of the queue
    run.state("gone/")


def campaign_after_resign(run: Run) -> None:
    _grant(run, 0x91, 0x92)
    name = b64("elect")
    won = run.rpc("first", "/v3/election/campaign", {"name": name, "value": b64("a"), "lease": 0x91})
    second = run.later("/v3/election/campaign", {"name": name, "value": b64("b"), "lease": 0x92})
    run.wait_keys("elect/", 2)
    run.rpc("resign", "/v3/election/resign", {"leader": won["leader"]})
    run.record("second", second.result())
    run.rpc("leader", "/v3/election/leader", {"name": name})


def observe_changes(run: Run) -> None:
    _grant(run, 0xA1, 0xA2)
    name = b64("obs")
    conn = StreamConn(run.target.url, "/v3/election/observe", timeout=WAIT_S)

    def observed(label: str) -> None:
        # Read before the next change: observe reports the leader as it finds it, not every write.
        run.transcript.append(f"observed {label}: {normalise(conn.read_line(), run.baseline).decode()}")

    try:
        conn.send({"name": name})
        conn.end_body()
        won = run.rpc("campaign a", "/v3/election/campaign", {"name": name, "value": b64("a"), "lease": 0xA1})
        observed("a")
        run.rpc("proclaim", "/v3/election/proclaim", {"leader": won["leader"], "value": b64("a2")})
        observed("a2")
        second = run.later("/v3/election/campaign", {"name": name, "value": b64("b"), "lease": 0xA2})
        run.wait_keys("obs/", 2)
        run.rpc("revoke a", "/v3/lease/revoke", {"ID": 0xA1})
        run.record("campaign b", second.result())
        observed("b")
    finally:
        conn.close()


SCENARIOS: dict[str, Scenario] = {
    "lock-handover": lock_handover,
    "lock-waiter-goes-away": lock_waiter_goes_away,
    "campaign-after-resign": campaign_after_resign,
    "observe-changes": observe_changes,
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_matches_etcd(name: str, reference: Target, candidate: Target) -> None:
    _compare(SCENARIOS[name], reference, candidate)


def test_e2e_campaign_then_proclaim(candidate: Target) -> None:
    """etcd's e2e testV3CurlCampaign: campaign without a lease, then proclaim with the answered key."""
    client, url = candidate.client, candidate.url
    campaign = {"name": b64("/election-prefix"), "value": b64("v1")}
    resp = client.post(f"{url}/v3/election/campaign", json=campaign)
    assert resp.status_code == 200
    assert '"leader":{"name":"' in resp.text
    leader = resp.json()["leader"]
    proclaim = client.post(f"{url}/v3/election/proclaim", json={"leader": leader, "value": b64("v2")})
    assert '"revision":' in proclaim.text


