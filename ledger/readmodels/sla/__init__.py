"""The SLA items and their board: evolve (pure), view (stored, versioned) and query."""
