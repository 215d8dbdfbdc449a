# etcdpy member image: the same `etcdpy` command and etcd flags as on a workstation.
FROM python:3.11-slim
WORKDIR /opt/etcdpy
COPY pyproject.toml README.md ./
COPY etcdpy ./etcdpy
COPY app ./app
COPY raft ./raft
COPY storage ./storage
COPY bench ./bench
RUN pip install --no-cache-dir .
WORKDIR /data
EXPOSE 2379 2380
ENTRYPOINT ["etcdpy"]
