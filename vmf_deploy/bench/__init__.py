"""vmf-bench: the benchmark harness (latency, memory, parity per backend), its results schema, plot and phones."""
