-- Every key that ever had a sum version, per bucket and person: an as-of read looks up, for
-- each key, the one version in force at its cut (the latest valid_from at or before it, an
-- index seek on rm_kpi_sums' primary key) instead of scanning every version closed after the
-- cut, which for a month's core bucket can be most of the month's events.
-- depends: 0007.slim-event-index
CREATE TABLE rm_kpi_sum_keys (
    bucket text NOT NULL,
    person text NOT NULL,
    kpi text NOT NULL,
    department text NOT NULL,
    label text NOT NULL,
    PRIMARY KEY (bucket, person, kpi, department, label)
);
INSERT INTO rm_kpi_sum_keys (bucket, person, kpi, department, label)
SELECT DISTINCT bucket, person, kpi, department, label FROM rm_kpi_sums;

-- The loose versions of a period closed after an earlier cut (an as-of read): the period's own,
-- by (depth, at), not every loose version closed after the cut in any period, which is what
-- rm_kpi_rows_loose (leading with valid_to) would scan. Partial on closed versions, so that the
-- open versions of a live read keep being found through rm_kpi_rows_loose.
CREATE INDEX rm_kpi_rows_loose_at ON rm_kpi_rows
    (depth, at, valid_to, valid_from, kpi, department, person, entity, num, den, pending_until, label)
    WHERE loose = 1 AND valid_to IS NOT NULL;
