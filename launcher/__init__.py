"""Local launchers: start the stack's processes for real (`make run`, the tests, the benchmark).
Not shipped in any image."""
