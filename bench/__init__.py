"""Benchmark harness and the project's one text-scoring module (bench.scoring)."""
