"""Trivial answers' scores, beside which a trained model's figures are read: what a family's held-out evaluation
reports, and what the plots, the report and training_log.json show next to the run's own metric."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Baselines:
    """`scores`: each trivial answer's value of `metric` (lower is better) on `episodes` held-out episodes; `gain`:
    the logged metric that says how far the model is past the best of them."""

    metric: str
    scores: dict[str, float]
    episodes: int
    gain: str

    def best(self) -> tuple[str, float]:
        """The best trivial answer and its score."""
        label = min(self.scores, key=self.scores.__getitem__)
        return label, self.scores[label]

    def line(self) -> str:
        """One line for the console and the report."""
        scores = ", ".join(f"{label} {value:.4f}" for label, value in self.scores.items())
        _, value = self.best()
        return (f"Trivial baselines on {self.episodes} held-out episodes ({self.metric}): {scores}; {self.gain} "
                f"measures the share of the best ({value:.4f}) a trained model removes.")

    def as_dict(self) -> dict[str, object]:
        """The record for training_log.json."""
        label, value = self.best()
        return {"metric": self.metric, "episodes": self.episodes, "scores": self.scores, "best": label,
                "best_score": value, "gain_metric": self.gain}
