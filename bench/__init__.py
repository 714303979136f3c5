"""Atheria's benchmarks: the framework's cost, the mirror, the budget, memory, step throughput and start-up."""
