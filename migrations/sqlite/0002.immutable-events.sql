-- Nothing stored is ever updated or deleted: a mistake is fixed by event.corrected.
-- depends: 0001.ledger-events
CREATE TRIGGER ledger_events_no_update BEFORE UPDATE ON ledger_events
BEGIN SELECT RAISE(ABORT, 'ledger events are immutable'); END;
CREATE TRIGGER ledger_events_no_delete BEFORE DELETE ON ledger_events
BEGIN SELECT RAISE(ABORT, 'ledger events are immutable'); END;
CREATE TRIGGER event_index_no_update BEFORE UPDATE ON event_index
BEGIN SELECT RAISE(ABORT, 'ledger events are immutable'); END;
CREATE TRIGGER event_index_no_delete BEFORE DELETE ON event_index
BEGIN SELECT RAISE(ABORT, 'ledger events are immutable'); END;
