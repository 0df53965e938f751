"""Benchmarks and load clients for fixbridge."""
