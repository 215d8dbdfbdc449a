"""etcdpy's application: the gateway, the server glue, the peer transport, and the `etcdpy` command."""
