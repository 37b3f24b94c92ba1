"""The KPIs: evolve (rows, pure), sums and report (pure), view (stored, versioned) and query."""
