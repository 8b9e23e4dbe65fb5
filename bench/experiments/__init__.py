"""Experiments that call the worker's engine directly: with bench.direct, the one exception
import-linter allows to the rule that the benchmark measures from outside."""
