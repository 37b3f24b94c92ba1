-- The event_id index keeps only where each event is; the stored event itself has the rest
-- (stream, version, hash). The old eight-column index and its type index made a batch's
-- commit write three times the pages of the events alone. `stream_types` answers "which
-- streams hold an event of type T" with one row per (type, stream), not one per event.
-- depends: 0006.kpi-rows
CREATE TABLE event_ids (
    event_id TEXT PRIMARY KEY,
    notification_id INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO event_ids (event_id, notification_id)
SELECT i.event_id, e.notification_id
FROM event_index i
JOIN ledger_events e
  ON e.originator_id = i.originator_id AND e.originator_version = i.originator_version;

CREATE TABLE stream_types (
    type TEXT NOT NULL,
    stream_type TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    PRIMARY KEY (type, stream_type, stream_id)
) WITHOUT ROWID;
INSERT INTO stream_types (type, stream_type, stream_id)
SELECT DISTINCT type, stream_type, stream_id FROM event_index;

DROP TABLE event_index;

CREATE TRIGGER event_ids_no_update BEFORE UPDATE ON event_ids
BEGIN SELECT RAISE(ABORT, 'ledger events are immutable'); END;
CREATE TRIGGER event_ids_no_delete BEFORE DELETE ON event_ids
BEGIN SELECT RAISE(ABORT, 'ledger events are immutable'); END;
CREATE TRIGGER stream_types_no_update BEFORE UPDATE ON stream_types
BEGIN SELECT RAISE(ABORT, 'ledger events are immutable'); END;
CREATE TRIGGER stream_types_no_delete BEFORE DELETE ON stream_types
BEGIN SELECT RAISE(ABORT, 'ledger events are immutable'); END;
