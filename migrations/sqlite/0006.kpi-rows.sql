-- Read model of KPI contributions (ledger/projections/kpi_board.py), versioned by position so
-- that an as-of read sees each row as it stood: a version counts for cuts in [valid_from, valid_to).
-- depends: 0005.sla-items
CREATE TABLE rm_kpi_rows (
    row_key TEXT NOT NULL,
    valid_from INTEGER NOT NULL,
    valid_to INTEGER,
    unit TEXT NOT NULL,
    kpi TEXT NOT NULL,
    department TEXT NOT NULL,
    person TEXT NOT NULL,
    entity TEXT NOT NULL,
    at TEXT NOT NULL,
    num TEXT NOT NULL,
    den TEXT NOT NULL,
    pending_until TEXT,
    label TEXT NOT NULL,
    refs TEXT NOT NULL,
    PRIMARY KEY (row_key, valid_from)
);
CREATE INDEX rm_kpi_rows_at ON rm_kpi_rows (at, kpi);
CREATE INDEX rm_kpi_rows_person ON rm_kpi_rows (person, at);
CREATE INDEX rm_kpi_rows_unit ON rm_kpi_rows (unit, valid_to);
-- Which complaints ever named a batch: their attributions and filings count for its KPIs.
CREATE TABLE rm_kpi_links (
    batch_id TEXT NOT NULL,
    complaint_id TEXT NOT NULL,
    PRIMARY KEY (batch_id, complaint_id)
);
