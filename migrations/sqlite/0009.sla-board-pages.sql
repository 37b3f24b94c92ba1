-- Pages of the SLA board (GET /v1/sla?limit=N&cursor=C, ledger/readmodels/sla/query.py) read
-- in (due_at, notification_event_id) order from the cursor's key on and stop after N rows: one
-- range scan of the first index, or of the second when a department is asked. Their other
-- columns decide within the index whether a version counts at the cut (valid_from, valid_to)
-- and whether it is in the state asked (fulfilled_at). The department's index also answers
-- whether a department was ever seen (readmodels/kpis/names.py). They replace
-- rm_sla_items_current, whose order (valid_to first) made every read sort all the items.
-- depends: 0008.kpi-sum-keys
CREATE INDEX rm_sla_items_page ON rm_sla_items
    (due_at, notification_event_id, valid_from, valid_to, fulfilled_at);
CREATE INDEX rm_sla_items_department_page ON rm_sla_items
    (department, due_at, notification_event_id, valid_from, valid_to, fulfilled_at);
DROP INDEX rm_sla_items_current;
