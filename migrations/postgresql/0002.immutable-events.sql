-- Nothing stored is ever updated, deleted or truncated, not even by the table owner.
-- depends: 0001.ledger-events
CREATE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger events are immutable: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER ledger_events_immutable BEFORE UPDATE OR DELETE ON ledger_events
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER event_index_immutable BEFORE UPDATE OR DELETE ON event_index
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER event_index_no_truncate BEFORE TRUNCATE ON event_index
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
