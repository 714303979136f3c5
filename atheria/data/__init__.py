"""LightningDataModules: QCA episode seeds (and text, for the language-model family)."""
from atheria.data.episodes import EpisodeDataModule, EpisodeStream

__all__ = ["EpisodeDataModule", "EpisodeStream"]
