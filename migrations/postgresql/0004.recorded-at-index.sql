-- As-of reads find the last position recorded at or before a time (recorded_at never
-- decreases along notification_id, so this index is ordered like the feed).
-- depends: 0002.immutable-events
CREATE INDEX ledger_events_recorded_at_idx ON ledger_events (recorded_at, notification_id);
CREATE INDEX event_index_type_idx ON event_index (type);
