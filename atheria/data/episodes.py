"""Episodes as data: each batch is the seeded initial state of one episode, indexed from the resume point."""
from __future__ import annotations

from typing import Iterator

import lightning.pytorch as pl
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from atheria.qca.state import initial_state


class EpisodeStream(IterableDataset):
    """Endless episodes from `start`: {'episode': i, 'sample': s, 'psi0': complex [B, H, W, d]}, the state seeded
    by (seed, s) with s = i x world + rank, so that under DDP every rank plays a different episode."""

    def __init__(self, seed: int, start: int, batch_size: int, grid_size: int, d_state: int, rank: int = 0,
                 world: int = 1) -> None:
        super().__init__()
        self.seed, self.start, self.rank, self.world = seed, start, rank, world
        self.shape = (batch_size, grid_size, d_state)

    def __iter__(self) -> Iterator[dict]:
        episode = self.start
        batch, grid, d_state = self.shape
        while True:
            sample = episode * self.world + self.rank
            yield {"episode": episode, "sample": sample, "psi0": initial_state(self.seed, sample, batch, grid, d_state)}
            episode += 1


class EpisodeDataModule(pl.LightningDataModule):
    """Feeds episode initial states; the index comes from the trainer's step, so a resume continues exactly."""

    def __init__(self, seed: int, batch_size: int, grid_size: int, d_state: int, held_out: int = 0) -> None:
        super().__init__()
        self.seed, self.batch_size, self.grid_size, self.d_state = seed, batch_size, grid_size, d_state
        self.held_out_episodes = held_out

    def held_out(self) -> list[Tensor]:
        """The initial states of the held-out episodes (no training episode plays them), the same in every
        session."""
        return [initial_state(self.seed, i, self.batch_size, self.grid_size, self.d_state, held_out=True)
                for i in range(self.held_out_episodes)]

    def showcase(self) -> Tensor:
        """The first held-out episode's initial state, one member: what the rollout pictures show at every session."""
        return initial_state(self.seed, 0, 1, self.grid_size, self.d_state, held_out=True)

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        start, rank, world = (trainer.global_step, trainer.global_rank, trainer.world_size) if trainer else (0, 0, 1)
        stream = EpisodeStream(self.seed, start, self.batch_size, self.grid_size, self.d_state, rank, world)
        return DataLoader(stream, batch_size=None, num_workers=0)
