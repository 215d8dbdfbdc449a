"""etcdpyctl: an etcdctl 3.4 work-alike that speaks only the v3 JSON gateway (see app.ctl.cli)."""
