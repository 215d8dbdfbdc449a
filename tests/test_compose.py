"""docker-compose.yml describes a cluster etcdpy would actually form (no Docker engine runs here)."""

from pathlib import Path

import yaml

from etcdpy.app.config import parse_args
from etcdpy.app.local_cluster import member_argv
from etcdpy.app.server.identity import member_id

ROOT = Path(__file__).resolve().parent.parent


def test_compose_members_form_one_cluster() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    configs = {name: parse_args(svc["command"]) for name, svc in services.items()}
    assert set(configs) == {"n1", "n2", "n3"}
    clusters = {cfg.initial_cluster for cfg in configs.values()}
    tokens = {cfg.initial_cluster_token for cfg in configs.values()}
    assert len(clusters) == 1 and len(tokens) == 1
    ids = {member_id(cfg.initial_advertise_peer_urls, cfg.initial_cluster_token) for cfg in configs.values()}
    assert len(ids) == 3
    for name, cfg in configs.items():
        assert cfg.name == name and cfg.data_dir.startswith("/data/")
        assert cfg.cluster_members[name] == cfg.initial_advertise_peer_urls


def test_dockerfile_installs_the_server_entry_point() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["etcdpy"]' in text
    for package in ("app", "raft", "storage"):
        assert f"COPY {package} ./{package}" in text


def test_local_cluster_command_uses_etcd_flags() -> None:
    configs = [parse_args(member_argv(i, "t", [])[3:]) for i in range(3)]
    assert {c.name for c in configs} == {"n1", "n2", "n3"}
    assert len({c.initial_cluster for c in configs}) == 1
