"""Front workers: processes that speak HTTP to clients so the member's own process does not have to.

`pool` starts them, `worker` is their program, `bridge` is the member's end of their channel and
`frames` is the byte format between the two.
"""
