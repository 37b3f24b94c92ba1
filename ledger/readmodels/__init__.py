"""Read models: pure functions of the events they count, the stored views that keep their
results, and the queries that read them.

One folder per read model (`timeline/`, `responsibility/`, `sla/`, `kpis/`), each with
`evolve.py` (the pure function over events: no ledger, no database), `view.py` where the model is
stored (its projector, versioned by position), and `query.py` (its reads, live or as of a cut).
What they share stands beside them: `facts.py` (events as read models see them, pure),
`casefile.py` (reads a complaint's or batch's streams from the ledger), `runner.py` (catch-up and
tracking), `views.py` (the transactions and bulk writes of stored views), `projections.py` (the
stored read models of one ledger) and `names.py` (the departments and people they have seen).
"""
