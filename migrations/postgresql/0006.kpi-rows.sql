-- Read model of KPI contributions (ledger/projections/kpi_board.py), versioned by position so
-- that an as-of read sees each row as it stood: a version counts for cuts in [valid_from, valid_to).
-- `loose` rows belong to entities that the sums below leave out of the bucket holding the row
-- (`depth`: the depth of the smallest bucket holding the whole entity), which a read may add itself.
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
    loose smallint NOT NULL,
    depth smallint NOT NULL,
    PRIMARY KEY (row_key, valid_from)
);
CREATE INDEX rm_kpi_rows_at ON rm_kpi_rows (at, kpi);
CREATE INDEX rm_kpi_rows_person ON rm_kpi_rows (person, at);
CREATE INDEX rm_kpi_rows_unit ON rm_kpi_rows (unit, valid_to);
-- covering what a read's figures need of a loose row (kpi_board.FIGURES): no table lookups
CREATE INDEX rm_kpi_rows_loose ON rm_kpi_rows
    (valid_to, depth, at, valid_from, kpi, department, person, entity, num, den, pending_until, label)
    WHERE loose = 1;
CREATE INDEX rm_kpi_rows_loose_person ON rm_kpi_rows (person, depth, at, valid_to, valid_from)
    WHERE loose = 1;
-- Pre-added contributions of whole entities per time bucket (ledger/projections/kpi_sums.py),
-- department-wide (person '') and per person; versioned as above, an open version's valid_to
-- being 2^63 - 1. Numbers are exact fractions as text ("3", "7/2").
CREATE TABLE rm_kpi_sums (
    bucket text NOT NULL,
    person text NOT NULL,
    kpi text NOT NULL,
    department text NOT NULL,
    label text NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint NOT NULL,
    num text NOT NULL,
    den text NOT NULL,
    entities bigint NOT NULL,
    PRIMARY KEY (bucket, person, kpi, department, label, valid_from)
);
CREATE INDEX rm_kpi_sums_open ON rm_kpi_sums (bucket, person, valid_to);
-- Which complaints ever named a batch: their attributions and filings count for its KPIs.
CREATE TABLE rm_kpi_links (
    batch_id text NOT NULL,
    complaint_id text NOT NULL,
    PRIMARY KEY (batch_id, complaint_id)
);
