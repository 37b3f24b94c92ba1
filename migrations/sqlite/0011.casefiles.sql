-- The case files' read model (ledger/readmodels/casefiles/): what the timelines and the
-- responsibility chains read of batch streams (production batches and material lots) without
-- reading the streams whole. Every table but rm_case_evidence is append-only, so an as-of read
-- keeps the rows with position <= its cut.
-- depends: 0010.kpi-state

-- Each event of a batch stream in timeline order: a page is one range scan from the cursor's
-- key, stopped after its limit. The second index gives a stream's events after its last
-- summary checkpoint (what a summary at a cut adds to it) without reading the table.
CREATE TABLE rm_case_events (
    stream_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    position INTEGER NOT NULL,
    type TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (stream_id, occurred_at, position)
) WITHOUT ROWID;
CREATE INDEX rm_case_events_position ON rm_case_events (stream_id, position, type, occurred_at);

-- Each correction of an event of a batch stream: the first one counted is its corrected_by.
CREATE TABLE rm_case_corrections (
    corrected_event_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (corrected_event_id, position)
) WITHOUT ROWID;

-- Checkpoints of a batch stream's summary as the timeline's first page shows it: after its
-- first event, every 64th (casefiles/evolve.py CHECKPOINT) and each change of its registration.
-- The summary at a cut is the last checkpoint there plus the stream's events after it.
CREATE TABLE rm_case_summaries (
    stream_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (stream_id, position)
) WITHOUT ROWID;

-- How the responsibility chain reads an event of a batch stream (kind: material, operator,
-- equipment, process, passed_final, attribution, or sla for what SLA items depend on; detail:
-- the attribution), versioned by position since a correction reclassifies the event it
-- corrects: a version counts for cuts in [valid_from, valid_to). `position` is the event's own.
CREATE TABLE rm_case_evidence (
    event_id TEXT NOT NULL,
    valid_from INTEGER NOT NULL,
    valid_to INTEGER,
    stream_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (event_id, valid_from)
);
CREATE INDEX rm_case_evidence_stream ON rm_case_evidence (stream_id, kind, position);
