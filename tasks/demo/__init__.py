"""Synthetic old scans with ground truth, for the demo, tests and benchmarks."""
