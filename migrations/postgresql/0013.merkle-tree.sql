-- The ledger's Merkle tree (RFC 9162), kept by the `merkle` read model
-- (ledger/readmodels/digest/view.py): the hash of every perfect subtree by (level, index),
-- level 0 being the events' leaf hashes (docs/CANONICAL.md), and the position of each leaf.
-- A root or a proof of any size reads O(log n) of these nodes; nothing is ever updated.
-- depends: 0012.kpi-case-events
CREATE TABLE rm_merkle_nodes (
    level smallint NOT NULL,
    idx bigint NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE rm_merkle_leaves (
    idx bigint PRIMARY KEY,
    position bigint NOT NULL UNIQUE
);
