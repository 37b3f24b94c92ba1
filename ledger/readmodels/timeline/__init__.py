"""The dispute timeline of a complaint or batch: evolve (pure) and query."""
