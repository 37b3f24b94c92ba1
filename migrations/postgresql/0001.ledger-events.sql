-- Exactly what eventsourcing 9.5's PostgresApplicationRecorder creates (CREATE_TABLE=false),
-- plus recorded_at: clock_timestamp() is evaluated inside the insert, under the recorder's
-- EXCLUSIVE table lock, so recorded_at never decreases along notification_id.
CREATE TABLE ledger_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);
CREATE UNIQUE INDEX ledger_events_notification_id_idx ON ledger_events (notification_id ASC);
CREATE TYPE stored_event_uuid AS (
    originator_id uuid,
    originator_version bigint,
    topic text,
    state bytea
);

-- One row per event_id, written in the same transaction as the event.
CREATE TABLE event_index (
    event_id uuid PRIMARY KEY,
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    stream_type text NOT NULL,
    stream_id text NOT NULL,
    type text NOT NULL,
    digest text NOT NULL,
    hash text NOT NULL
);

CREATE TABLE ledger_tracking (
    application_name text,
    notification_id bigint,
    PRIMARY KEY (application_name)
);
INSERT INTO ledger_tracking VALUES ('__migration__', 1);
