-- The folded state of each stream's KPI rows (ledger/readmodels/kpis/fold.py): what the
-- projector needs to add an event's rows without reading the stream's earlier events. Not
-- versioned: as-of reads use the versions of rm_kpi_rows and rm_kpi_sums; `position` is the last
-- event folded in. A stream without one (projected before this migration) is read whole once.
-- depends: 0008.kpi-sum-keys
CREATE TABLE rm_kpi_state (
    unit TEXT NOT NULL PRIMARY KEY,
    state TEXT NOT NULL,
    position INTEGER NOT NULL
) WITHOUT ROWID;
