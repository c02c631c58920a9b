"""`make bench`: load the running system as a user would and report against issue 7's targets.

`PYTHONPATH=test-support python -m bench [--quick] [--catalog N]` starts the three processes
on PostgreSQL through scripts/run.py (or measures the system at BENCH_URL), seeds users and a
catalog, drives each scenario with wrk in interleaved rounds, and prints and writes the figures.
"""
