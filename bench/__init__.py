"""Benchmarks of the running stack against the issue's targets: `make bench` (not part of CI).

Generates its inputs (cached in bench/.cache/), starts the real API and workers on throwaway
database and key names, measures, and writes bench/results/latest.md.
"""
