-- Read model of KPI contributions (ledger/projections/kpi_board.py), versioned by position so
-- that an as-of read sees each row as it stood: a version counts for cuts in [valid_from, valid_to).
-- depends: 0005.sla-items
CREATE TABLE rm_kpi_rows (
    row_key text NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    unit text NOT NULL,
    kpi text NOT NULL,
    department text NOT NULL,
    person text NOT NULL,
    entity text NOT NULL,
    at text NOT NULL,
    num text NOT NULL,
    den text NOT NULL,
    pending_until text,
    label text NOT NULL,
    refs text NOT NULL,
    PRIMARY KEY (row_key, valid_from)
);
CREATE INDEX rm_kpi_rows_at ON rm_kpi_rows (at, kpi);
CREATE INDEX rm_kpi_rows_person ON rm_kpi_rows (person, at);
CREATE INDEX rm_kpi_rows_unit ON rm_kpi_rows (unit, valid_to);
-- Which complaints ever named a batch: their attributions and filings count for its KPIs.
CREATE TABLE rm_kpi_links (
    batch_id text NOT NULL,
    complaint_id text NOT NULL,
    PRIMARY KEY (batch_id, complaint_id)
);
