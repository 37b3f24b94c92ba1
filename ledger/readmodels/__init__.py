"""Read models: pure functions of the events they count, the stored views that keep their
results, and the queries that read them.

One folder per read model (`timeline/`, `responsibility/`, `casefiles/`, `sla/`, `kpis/`,
`digest/`), each with `evolve.py` (the pure function over events: no ledger, no database; the
digest's is the domain's Merkle tree and leaf), `view.py` where the model is stored (its
projector, versioned by position), and `query.py` (its reads, live or as of a cut).
What they share stands beside them: `facts.py` (events as read models see them, pure),
`casefile.py` (reads a complaint's or batch's streams from the ledger), `trusted.py` (whose
events count at their occurred_at), `runner.py` (catch-up, tracking and the wait of a read),
`views.py` (the transactions and bulk writes of stored views) and `projections.py` (the stored
read models of one ledger). A query takes the runner of its stored view, not all of them.

`casefiles/` stores what the timelines and the responsibility chains read of batch streams, so
their reads cost what they show; `timeline/` and `responsibility/` keep the pure functions that
define those answers, and their queries compute them from every counted event (the reference).
"""
