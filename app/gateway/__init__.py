"""The HTTP face of a member: etcd's v3 JSON gateway (one route table, one module per service), the
watch streams, the codec for etcd's JSON conventions and the OpenAPI document."""
