-- The SLA and rectification events of each batch stream whose KPI rows the projector folds
-- (ledger/readmodels/kpis/fold.py): a notification, an answer, a plan, a completion, a
-- verification or a correction of one of them takes the stream's SLA and rectification rows
-- again from these events alone, not from the whole stream. Written with the stream's folded
-- state (rm_kpi_state), so a stream with a state has all of its own here.
-- depends: 0011.casefiles
CREATE TABLE rm_kpi_case_events (
    unit text NOT NULL,
    position bigint NOT NULL,
    event_id text NOT NULL,
    PRIMARY KEY (unit, position)
);

-- A stream's rows in force of one KPI (the fold's `of_kpi`: a batch's SLA rows, its final
-- inspections, its adjusted defect rows) are one range of this index, not a scan of all the
-- stream's rows in force; the stream's rows in force are still its prefix.
DROP INDEX rm_kpi_rows_unit;
CREATE INDEX rm_kpi_rows_unit ON rm_kpi_rows (unit, valid_to, kpi);
