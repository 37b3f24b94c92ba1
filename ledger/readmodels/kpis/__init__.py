"""The KPIs: evolve (rows, pure), sums and report (pure), view (stored), names and query."""
