"""What a run reports about itself, framework-neutral: resources, the metrics history, the training log."""
