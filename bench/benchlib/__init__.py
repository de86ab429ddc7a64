"""Helpers shared by the benchmark scripts: processes, signed requests, load, tables."""
