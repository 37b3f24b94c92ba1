-- The case files' read model (ledger/readmodels/casefiles/): what the timelines and the
-- responsibility chains read of batch streams (production batches and material lots) without
-- reading the streams whole. Every table but rm_case_evidence is append-only, so an as-of read
-- keeps the rows with position <= its cut.
-- depends: 0010.kpi-state

-- Each event of a batch stream in timeline order: a page is one range scan from the cursor's
-- key, stopped after its limit. The second index gives a stream's events after its last
-- summary checkpoint (what a summary at a cut adds to it) without reading the table.
CREATE TABLE rm_case_events (
    stream_id text NOT NULL,
    occurred_at text COLLATE "C" NOT NULL,
    position bigint NOT NULL,
    type text NOT NULL,
    event_id text NOT NULL,
    PRIMARY KEY (stream_id, occurred_at, position)
);
CREATE INDEX rm_case_events_position ON rm_case_events (stream_id, position, type, occurred_at);
-- A page scans the primary key in order and stops after its limit only if the planner knows how
-- many events a long stream holds; with stale statistics it reads the stream whole and sorts.
-- Statistics are refreshed after every 1% of the table changed (the default is 10%).
ALTER TABLE rm_case_events SET (
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);

-- Each correction of an event of a batch stream: the first one counted is its corrected_by.
CREATE TABLE rm_case_corrections (
    corrected_event_id text NOT NULL,
    position bigint NOT NULL,
    event_id text NOT NULL,
    PRIMARY KEY (corrected_event_id, position)
);

-- Checkpoints of a batch stream's summary as the timeline's first page shows it: after its
-- first event, every 64th (casefiles/evolve.py CHECKPOINT) and each change of its registration.
-- The summary at a cut is the last checkpoint there plus the stream's events after it.
CREATE TABLE rm_case_summaries (
    stream_id text NOT NULL,
    position bigint NOT NULL,
    summary text NOT NULL,
    PRIMARY KEY (stream_id, position)
);

-- How the responsibility chain reads an event of a batch stream (kind: material, operator,
-- equipment, process, passed_final, attribution, or sla for what SLA items depend on; detail:
-- the attribution), versioned by position since a correction reclassifies the event it
-- corrects: a version counts for cuts in [valid_from, valid_to). `position` is the event's own.
CREATE TABLE rm_case_evidence (
    event_id text NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    stream_id text NOT NULL,
    position bigint NOT NULL,
    kind text NOT NULL,
    detail text,
    PRIMARY KEY (event_id, valid_from)
);
CREATE INDEX rm_case_evidence_stream ON rm_case_evidence (stream_id, kind, position);
