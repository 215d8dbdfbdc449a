"""Member-to-member HTTP: Raft message batches, snapshots, and requests forwarded to the leader."""
