"""`python -m app.local_cluster`: a 3-member cluster on 127.0.0.1 for trying etcdpy out.

Members n1, n2, n3 serve clients on 2379, 22379, 32379 and peers on 2380, 22380, 32380 (etcd's own
Procfile uses the same ports), with data in ./n1.etcdpy and so on. Each member is a plain `etcdpy`
process started with etcd's clustering flags; Ctrl-C stops them all.

`--https` serves client and peer URLs over TLS; the certificate flags go through to every member, e.g.
`etcdpy-local-cluster --https --auto-tls --peer-auto-tls` (self-signed: `curl -k`), or etcd's
`--cert-file … --peer-cert-file …` flags with certificates valid for 127.0.0.1.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

CLIENT_PORTS = (2379, 22379, 32379)
PEER_PORTS = (2380, 22380, 32380)


def member_argv(i: int, token: str, extra: list[str], scheme: str = "http") -> list[str]:
    name = f"n{i + 1}"
    client = f"{scheme}://127.0.0.1:{CLIENT_PORTS[i]}"
    peer = f"{scheme}://127.0.0.1:{PEER_PORTS[i]}"
    cluster = ",".join(f"n{j + 1}={scheme}://127.0.0.1:{PEER_PORTS[j]}" for j in range(len(PEER_PORTS)))
    return [
        sys.executable, "-m", "etcdpy.app", "--name", name, "--data-dir", f"{name}.etcdpy",
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", token,
        *extra,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", default="etcdpy-local", help="--initial-cluster-token for all members")
    parser.add_argument("--https", action="store_true", help="https client and peer URLs (give TLS flags)")
    args, extra = parser.parse_known_args()
    scheme = "https" if args.https else "http"
    procs = [subprocess.Popen(member_argv(i, args.token, extra, scheme)) for i in range(len(CLIENT_PORTS))]
    endpoints = ",".join(f"{scheme}://127.0.0.1:{p}" for p in CLIENT_PORTS)
    print(f"etcdpy local cluster: clients at {endpoints}", flush=True)

    def stop(*_: object) -> None:
        for proc in procs:
            proc.terminate()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
    finally:
        stop()
        for proc in procs:
            proc.wait()


if __name__ == "__main__":
    main()
