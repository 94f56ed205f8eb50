"""Benchmarks: figures printed side by side with peers, in one run (not tests)."""
