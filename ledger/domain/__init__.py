"""The domain: events, streams and their rules. It knows no HTTP and no SQL.

This package imports nothing itself, so a module that needs only the vocabulary or the time
format (the read models' pure functions) does not load the aggregates and their library.
"""
