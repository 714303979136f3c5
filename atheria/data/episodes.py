"""Episodes as data: each batch is the seeded initial state of one episode, indexed from the resume point."""
from __future__ import annotations

from typing import Iterator

import lightning.pytorch as pl
from torch.utils.data import DataLoader, IterableDataset

from atheria.qca.state import initial_state


class EpisodeStream(IterableDataset):
    """Endless episodes from `start`: {'episode': i, 'psi0': complex [B, H, W, d]} seeded by (seed, i)."""

    def __init__(self, seed: int, start: int, batch_size: int, grid_size: int, d_state: int) -> None:
        super().__init__()
        self.seed, self.start = seed, start
        self.shape = (batch_size, grid_size, d_state)

    def __iter__(self) -> Iterator[dict]:
        episode = self.start
        while True:
            batch, grid, d_state = self.shape
            yield {"episode": episode, "psi0": initial_state(self.seed, episode, batch, grid, d_state)}
            episode += 1


class EpisodeDataModule(pl.LightningDataModule):
    """Feeds episode initial states; the index comes from the trainer's step, so a resume continues exactly."""

    def __init__(self, seed: int, batch_size: int, grid_size: int, d_state: int) -> None:
        super().__init__()
        self.seed, self.batch_size, self.grid_size, self.d_state = seed, batch_size, grid_size, d_state

    def train_dataloader(self) -> DataLoader:
        start = self.trainer.global_step if self.trainer is not None else 0
        stream = EpisodeStream(self.seed, start, self.batch_size, self.grid_size, self.d_state)
        return DataLoader(stream, batch_size=None, num_workers=0)
