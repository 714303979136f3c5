"""Framework-neutral durable storage: atomic writes, manifests, the checkpoint finder and the background mirror.

Import the modules themselves (atheria.storage.finder, .mirror, ...): this package imports nothing, so that
commands which only read status files never pay for torch."""
