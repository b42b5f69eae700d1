"""The results store: one row a run, in SQLite (a host's own) or PostgreSQL (a lab's).

schema.py (the tables, one schema for both databases) -> db.py (``open_store``: which
database, its connection, the schema made or checked) -> record.py (a run directory -> a
row and its raw latencies; ``record_run_safely`` is what a run's end calls) -> query.py
(filters, the runs ``compare`` is given) -> compare.py (the statistics: Mann-Whitney U, a
bootstrap CI of the scored percentile, stability). The command line is cli/results.py.
"""
