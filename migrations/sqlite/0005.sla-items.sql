-- Read model of SLA items (ledger/projections/board.py), versioned by position so that an as-of
-- read sees each item as it stood: a version counts for cuts in [valid_from, valid_to).
-- depends: 0004.recorded-at-index
CREATE TABLE rm_sla_items (
    notification_event_id TEXT NOT NULL,
    valid_from INTEGER NOT NULL,
    valid_to INTEGER,
    stream_type TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    department TEXT NOT NULL,
    due_at TEXT NOT NULL,
    fulfilled_at TEXT,
    item TEXT NOT NULL,
    PRIMARY KEY (notification_event_id, valid_from)
);
CREATE INDEX rm_sla_items_current ON rm_sla_items (valid_to, department, due_at);
CREATE INDEX rm_sla_items_stream ON rm_sla_items (stream_type, stream_id, valid_to);
