"""The responsibility chain of a complaint: evolve (pure) and query."""
