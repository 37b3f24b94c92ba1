"""The ledger digest: a Merkle tree over every event's leaf, stored, and its roots and proofs."""
