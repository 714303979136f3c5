"""What a run reports about itself, framework-neutral and pure: resources, the metrics history, the training log,
figures, the report's text and durations as people read them. Every task can use them; no Lightning here."""
