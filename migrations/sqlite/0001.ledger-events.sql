-- Events as the eventsourcing library's SQLite application recorder reads them, with
-- notification_id aliasing the rowid (an alias keeps positions stable across VACUUM)
-- and recorded_at stamped inside the insert.
CREATE TABLE ledger_events (
    notification_id INTEGER PRIMARY KEY AUTOINCREMENT,
    originator_id TEXT NOT NULL,
    originator_version INTEGER NOT NULL,
    topic TEXT NOT NULL,
    state BLOB NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (originator_id, originator_version)
);

-- One row per event_id, written in the same transaction as the event: idempotent retries
-- and receipts.
CREATE TABLE event_index (
    event_id TEXT PRIMARY KEY,
    originator_id TEXT NOT NULL,
    originator_version INTEGER NOT NULL,
    stream_type TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    type TEXT NOT NULL,
    digest TEXT NOT NULL,
    hash TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE tracking (
    application_name TEXT,
    notification_id INTEGER,
    PRIMARY KEY (application_name)
) WITHOUT ROWID;
INSERT INTO tracking VALUES ('__migration__', 1);
