-- The event_id index keeps only where each event is; the stored event itself has the rest
-- (stream, version, hash). The old eight-column index and its type index made a batch's
-- commit write three times the pages of the events alone. `stream_types` answers "which
-- streams hold an event of type T" with one row per (type, stream), not one per event.
-- depends: 0006.kpi-rows

-- Writers of the previous version may still be running: keep them out until the copy is
-- done (in the order they lock: the events first), so no event_id is left behind.
LOCK TABLE ledger_events, event_index IN EXCLUSIVE MODE;
CREATE TABLE event_ids (
    event_id uuid PRIMARY KEY,
    notification_id bigint NOT NULL
);
INSERT INTO event_ids (event_id, notification_id)
SELECT i.event_id, e.notification_id
FROM event_index i
JOIN ledger_events e
  ON e.originator_id = i.originator_id AND e.originator_version = i.originator_version;

CREATE TABLE stream_types (
    type text NOT NULL,
    stream_type text NOT NULL,
    stream_id text NOT NULL,
    PRIMARY KEY (type, stream_type, stream_id)
);
INSERT INTO stream_types (type, stream_type, stream_id)
SELECT DISTINCT type, stream_type, stream_id FROM event_index;

DROP TABLE event_index;

CREATE TRIGGER event_ids_immutable BEFORE UPDATE OR DELETE ON event_ids
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER event_ids_no_truncate BEFORE TRUNCATE ON event_ids
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER stream_types_immutable BEFORE UPDATE OR DELETE ON stream_types
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER stream_types_no_truncate BEFORE TRUNCATE ON stream_types
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
