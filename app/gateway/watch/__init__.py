"""Watch over HTTP: etcd's NDJSON stream, the WebSocket variant and server-sent events."""
