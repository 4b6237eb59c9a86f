"""Benchmark of runledger on real parts (``python -m bench.run_bench``); not part of the test suite."""
