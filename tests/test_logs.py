"""Logs as etcd writes them: zap JSON lines carrying the member name, capnslog text, and the warnings an
operator acts on (slow fdatasync, a slow apply) in etcd's words, forced with tiny thresholds."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from etcdpy.app.config import ConfigError, parse_args
from etcdpy.app.logs import CapnslogFormatter, ZapFormatter, event, go_duration
from etcdpy.app.server.etcd_server import EtcdServer
from etcdpy.storage.kv_types import PutRequest
from tests.servers import start_etcdpy


def test_go_duration_matches_go() -> None:
    assert go_duration(1.5) == "1.5s"
    assert go_duration(0.1205) == "120.5ms"
    assert go_duration(0.000850) == "850µs"
    assert go_duration(2.0) == "2s"


def test_zap_and_capnslog_formats() -> None:
    logger = logging.getLogger("etcdpy.wal")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        event(logger, logging.WARNING, "slow fdatasync", "sync duration of 1.2s, expected less than 1s",
              took="1.2s", expected_duration="1s")
    finally:
        logger.removeHandler(handler)
    (record,) = records
    line = json.loads(ZapFormatter("m1").format(record))
    assert {k: line[k] for k in ("level", "msg", "name", "took", "expected-duration")} == {
        "level": "warn", "msg": "slow fdatasync", "name": "m1", "took": "1.2s", "expected-duration": "1s"}
    assert line["ts"].endswith("Z") and line["caller"].endswith(".py:" + line["caller"].rsplit(":", 1)[1])
    text = CapnslogFormatter().format(record)
    assert text.endswith(" W | wal: sync duration of 1.2s, expected less than 1s")


def test_log_flags_are_etcds() -> None:
    cfg = parse_args(["--logger", "zap", "--log-outputs", "stdout,/tmp/x.log", "--access-log"])
    assert (cfg.logger, cfg.log_outputs, cfg.access_log) == ("zap", ["stdout", "/tmp/x.log"], True)
    with pytest.raises(ConfigError):
        parse_args(["--logger", "glog"])
    with pytest.raises(ConfigError):  # etcd: capnslog writes only to the standard streams
        parse_args(["--log-outputs", "/tmp/x.log"])


def test_every_zap_line_names_the_member(tmp_path: Path) -> None:
    log_file = tmp_path / "member.log"
    server = start_etcdpy(tmp_path, name="logged", extra=[
        "--logger", "zap", "--log-outputs", str(log_file), "--access-log"])
    try:
        import httpx

        assert httpx.post(f"{server.url}/v3/kv/put", json={"key": "YQ==", "value": "Yg=="}).status_code == 200
    finally:
        server.stop()
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    assert lines
    assert all(line["name"] == "logged" and {"level", "ts", "caller", "msg"} <= set(line) for line in lines)
    access = [line for line in lines if line["msg"] == "request" and line.get("path") == "/v3/kv/put"]
    assert access and access[0]["status"] == 200 and access[0]["grpc-code"] == "OK"


def test_slow_fsync_and_slow_apply_are_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    peer = "http://127.0.0.1:1"  # never dialled: a lone member sends no peer traffic
    cfg = parse_args(["--data-dir", str(tmp_path / "m.etcdpy"), "--listen-peer-urls", peer,
                      "--initial-advertise-peer-urls", peer])

    async def scenario() -> None:
        server = EtcdServer(cfg)
        server.wal_files.slow_sync_s = 0.0  # every sync is "slow"
        server.warn_apply_s = 0.0  # every apply is "slow"
        server.start()
        try:
            while not server.node.leader:
                await asyncio.sleep(0.01)
            await server.put(PutRequest(key=b"k", value=b"v"))
        finally:
            await server.stop()
            server.close()

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    fsync = [r for r in caplog.records if getattr(r, "zap_msg", "") == "slow fdatasync"]
    assert fsync and fsync[0].name == "etcdpy.wal"
    assert fsync[0].getMessage().startswith("sync duration of ")
    assert fsync[0].zap_fields["expected-duration"] == "1s"  # type: ignore[attr-defined]
    applies = [r for r in caplog.records if getattr(r, "zap_msg", "") == "apply request took too long"]
    assert applies and "took too long" in applies[0].getMessage()
    assert set(applies[0].zap_fields) >= {"took", "expected-duration", "request", "response"}  # type: ignore[attr-defined]
