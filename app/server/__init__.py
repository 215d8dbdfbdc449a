"""One member: proposals and reads, the Raft node, the applier, membership, and the background
loops around the watch hub and the lessor."""
