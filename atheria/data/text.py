"""Text as fixed-length token blocks: WikiText-2 through `datasets`, or local text files; batches seeded by step."""
from __future__ import annotations

import glob
import os
from typing import Any, Iterator, Optional

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from atheria.errors import ConfigError


def _lines(files: list[str]) -> list[str]:
    lines: list[str] = []
    for name in files:
        with open(name, encoding="utf-8") as f:
            lines += [line.rstrip("\n") for line in f]
    return [line for line in lines if line.strip()]


def read_splits(path: Optional[str], dataset: str, val_fraction: float = 0.1) -> tuple[list[str], list[str]]:
    """Non-empty (train, validation) lines: a folder with train*.txt and valid*.txt files, any other .txt file(s)
    with the last `val_fraction` of lines held out, or a `datasets` corpus named 'name:config' (WikiText-2)."""
    if path is None:
        from datasets import load_dataset

        name, _, config = dataset.partition(":")
        splits = [load_dataset(name, config or None, split=s)["text"] for s in ("train", "validation")]
        return [x for x in splits[0] if x.strip()], [x for x in splits[1] if x.strip()]
    train = sorted(glob.glob(os.path.join(path, "train*.txt"))) if os.path.isdir(path) else []
    valid = sorted(glob.glob(os.path.join(path, "valid*.txt"))) if os.path.isdir(path) else []
    if train and valid:
        return _lines(train), _lines(valid)
    lines = _lines(sorted(glob.glob(os.path.join(path, "*.txt"))) if os.path.isdir(path) else [path])
    cut = max(1, int(len(lines) * (1 - val_fraction)))
    return lines[:cut], lines[cut:]


def to_blocks(lines: list[str], tokenizer: Any, block_size: int) -> torch.Tensor:
    """Join lines, tokenise, and cut into [N, block_size] blocks (the tail shorter than a block is dropped)."""
    ids = tokenizer("\n".join(lines), return_attention_mask=False)["input_ids"]
    n = len(ids) // block_size
    return torch.tensor(ids[: n * block_size], dtype=torch.long).view(n, block_size)


class BlockStream(IterableDataset):
    """Endless batches from optimizer step `start`: epoch e's order is a permutation seeded by (seed, e), so the
    batch of any step is known in advance and a resumed run continues exactly. Under DDP rank r of `world` takes
    batch s x world + r at step s: the ranks train on different text."""

    def __init__(self, blocks: torch.Tensor, batch_size: int, seed: int, start: int, rank: int = 0,
                 world: int = 1) -> None:
        super().__init__()
        self.blocks, self.batch_size, self.seed, self.start = blocks, batch_size, seed, start
        self.rank, self.world = rank, world

    def batches_per_epoch(self) -> int:
        """Full batches in one pass over the blocks."""
        return max(1, len(self.blocks) // self.batch_size)

    def batch(self, index: int) -> torch.Tensor:
        """The [batch_size, block_size] token ids of the stream's batch `index` (optimizer step `index` in one
        process)."""
        epoch, offset = divmod(index, self.batches_per_epoch())
        order = torch.randperm(len(self.blocks), generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
        return self.blocks[order[offset * self.batch_size:(offset + 1) * self.batch_size]]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        step = self.start
        while True:
            yield {"input_ids": self.batch(step * self.world + self.rank), "step": step}
            step += 1


class TextDataModule(pl.LightningDataModule):
    """Train blocks as a step-seeded stream; validation blocks in order."""

    def __init__(self, tokenizer: Any, path: Optional[str] = None, dataset: str = "wikitext:wikitext-2-raw-v1",
                 block_size: int = 256, batch_size: int = 16, seed: int = 42, val_fraction: float = 0.1) -> None:
        super().__init__()
        self.tokenizer, self.path, self.dataset = tokenizer, path, dataset
        self.block_size, self.batch_size, self.seed, self.val_fraction = block_size, batch_size, seed, val_fraction
        self.train_blocks: Optional[torch.Tensor] = None
        self.val_blocks: Optional[torch.Tensor] = None

    def setup(self, stage: str) -> None:
        if self.train_blocks is None:
            train, val = read_splits(self.path, self.dataset, self.val_fraction)
            self.train_blocks = to_blocks(train, self.tokenizer, self.block_size)
            self.val_blocks = to_blocks(val, self.tokenizer, self.block_size)
            for split, blocks in (("training", self.train_blocks), ("validation", self.val_blocks)):
                if len(blocks) < self.batch_size:  # every batch is full: Φ needs its tokens (atheria.lm.phi)
                    raise ConfigError(f"data.path={self.path!r} gives {len(blocks)} {split} blocks of "
                                      f"data.block_size={self.block_size} tokens, fewer than data.batch_size="
                                      f"{self.batch_size}; accepted: more text, or a smaller block or batch size")

    def batches_per_epoch(self) -> int:
        """Optimizer steps in one pass over the training text."""
        return max(1, len(self.train_blocks) // self.batch_size)

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        start, rank, world = (trainer.global_step, trainer.global_rank, trainer.world_size) if trainer else (0, 0, 1)
        return DataLoader(BlockStream(self.train_blocks, self.batch_size, self.seed, start, rank, world),
                          batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_blocks, batch_size=self.batch_size, drop_last=True)
