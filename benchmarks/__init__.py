"""Benchmarks of sweeps against peers: ``python -m benchmarks`` writes docs/benchmarks.md.

Kept outside the installed packages and outside tests/: nothing here is imported by sweeps.
"""
