"""Micro-benchmarks run by hand (``python -m benchmarks.<name>``); not part of the tests."""
