"""The framework-neutral core every task uses: budget clock, guard (signals, stop requests), shelf (tiered checkpoints
and the mirror), status, events, outcome, and the kit that assembles them. Nothing here imports Lightning or
knows a model family."""
