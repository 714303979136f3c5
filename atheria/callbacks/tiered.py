"""Two-tier checkpoints: Lightning's ModelCheckpoint on fast local disk, mirrored in the background to durable
storage. Lightning's own class serves the local tier; it falls short on stopping (it saves only on its cadence),
on remote dirpaths (resume cannot find them; pruning can delete the resumed-from file) and on a 'latest' pointer."""
from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import shutil
import time
from typing import Any, Callable, Optional

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from atheria.callbacks.budget_clock import BudgetClock
from atheria.callbacks.events import EventLog
from atheria.storage.layout import Layout
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.manifest import FileEntry, Manifest, file_entry, read_manifest, write_manifest
from atheria.storage.mirror import Mirror

LAST, BEST_FINAL = "last.ckpt", "best-final.ckpt"
_STEP_IN_NAME = re.compile(r"ep(\d+)")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a hidden temp file beside its name, fsyncs it and renames it into place, so a kill
    or a full disk never leaves a partial file under a checkpoint's name. Lightning's own save stages the file in
    the system temp dir and moves it, which is a copy into the final name when that dir is on another disk."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(str(path), buffer.getvalue())


class TieredCheckpoint(ModelCheckpoint):
    """Saves every `save_every` episodes and at any stop, keeps the best N by `monitor` plus last.ckpt,
    writes latest.json, and mirrors checkpoints and logs every `sync_every` episodes and at the end."""

    def __init__(self, local: Layout, save_every: int, sync_every: int, keep_best: int, clock: BudgetClock,
                 mirror: Optional[Mirror] = None, monitor: str = "train/loss_smooth", mode: str = "min",
                 final_sync_timeout: float = 600.0, say: Callable[[str], None] = print) -> None:
        super().__init__(dirpath=local.checkpoints, filename="ep{step:06d}", auto_insert_metric_name=False,
                         every_n_train_steps=save_every, save_last=True, monitor=monitor, mode=mode,
                         save_top_k=keep_best, enable_version_counter=False)
        self.local, self.clock, self.mirror, self.say = local, clock, mirror, say
        self.sync_every, self.final_sync_timeout = sync_every, final_sync_timeout
        self._steps: dict[str, int] = {}
        self._entries: dict[str, tuple[tuple[int, int], FileEntry]] = {}
        self._remote_names: set[str] = set()
        self._last_sync_step = -1
        self.final_sync_ok: Optional[bool] = None
        self.latest: Optional[Manifest] = None
        self.events = EventLog(local.logs)

    # local tier ----------------------------------------------------------------------------------------------
    def _save_checkpoint(self, trainer: "pl.Trainer", filepath: str) -> None:
        t0 = time.monotonic()
        super()._save_checkpoint(trainer, filepath)
        self.clock.note_save(time.monotonic() - t0)
        self._steps[os.path.basename(filepath)] = trainer.global_step
        if trainer.is_global_zero:
            self.events.add("save", trainer.global_step, file=os.path.basename(filepath))

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        super().on_train_start(trainer, pl_module)
        self._last_sync_step = trainer.global_step
        if trainer.is_global_zero:  # temp files of saves and upload snapshots that a kill cut short (we hold the lock)
            for pattern in (".*.partial-*", ".*.mirror-snapshot"):
                for leftover in glob.glob(os.path.join(glob.escape(self.local.checkpoints), pattern)):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(leftover)
        if self.mirror is not None:
            try:
                published = read_manifest(self._remote_dir)
            except Exception:  # a remote that is down now is the mirror's to report and retry
                published = None
            self._remote_names = set(published.files) if published else set()

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        saved_before = self._last_global_step_saved
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if trainer.should_stop and self._last_global_step_saved != step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self._last_global_step_saved = step
        if self._last_global_step_saved == step and saved_before != step and trainer.is_global_zero:
            self._publish_local(step)
            due = self.sync_every > 0 and step - self._last_sync_step >= self.sync_every
            if due and not trainer.should_stop:
                self.sync(step)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        super().on_train_end(trainer, pl_module)
        if not trainer.is_global_zero:  # under DDP, rank zero keeps the files and the mirror
            return
        best = self.best_model_path
        if best and os.path.isfile(best) and os.path.basename(best) != BEST_FINAL:
            target = os.path.join(self.local.checkpoints, BEST_FINAL)
            shutil.copyfile(best, target + ".tmp")
            os.replace(target + ".tmp", target)
            self._steps[BEST_FINAL] = self._step_of(os.path.basename(best))
            self._publish_local(trainer.global_step)
        self.finish(trainer.global_step)

    # the 'latest' pointer and the remote tier ----------------------------------------------------------------
    @property
    def _remote_dir(self) -> str:
        assert self.mirror is not None
        return f"{self.mirror.remote_root.rstrip('/')}/{self.local.rel('checkpoints')}"

    def _step_of(self, name: str) -> int:
        if name in self._steps:
            return self._steps[name]
        found = _STEP_IN_NAME.search(name)
        return int(found.group(1)) if found else -1

    def kept(self) -> list[str]:
        """Checkpoint file names this run keeps: the best N, last.ckpt, best-final.ckpt."""
        names = {os.path.basename(p) for p in self.best_k_models} | {LAST, BEST_FINAL}
        return sorted(n for n in names if os.path.isfile(os.path.join(self.local.checkpoints, n)))

    def _entry(self, name: str) -> FileEntry:
        """Size/sha256/step of a local checkpoint, hashed again only when the file changed."""
        path = os.path.join(self.local.checkpoints, name)
        st = os.stat(path)
        key = (st.st_size, st.st_mtime_ns)
        cached = self._entries.get(name)
        if cached is None or cached[0] != key:
            cached = (key, file_entry(path, self._step_of(name)))
            self._entries[name] = cached
        return cached[1]

    def _publish_local(self, step: int) -> Manifest:
        manifest = Manifest(step=step, checkpoint=LAST, files={n: self._entry(n) for n in self.kept()})
        write_manifest(self.local.checkpoints, manifest)
        self.latest = manifest
        return manifest

    def _log_files(self) -> list[str]:
        """Relative paths of the experiment's logs (W&B's own folder excluded: W&B syncs itself) and exports."""
        exports = self.local.exports
        found = [self.local.rel("exports", f) for f in sorted(os.listdir(exports))
                 if f.startswith(f"{self.local.name}_")] if os.path.isdir(exports) else []
        for folder, dirs, files in os.walk(self.local.logs):
            dirs[:] = [d for d in dirs if d != "wandb"]
            rel = os.path.relpath(folder, self.local.root).replace(os.sep, "/")
            found += [f"{rel}/{f}" for f in files if not f.startswith(".")]
        return sorted(found)

    def sync(self, step: int) -> None:
        """Queue checkpoints, the manifest and logs for the mirror; prune remote files no longer kept. Never blocks."""
        if self.mirror is None:
            return
        if self.mirror.last_job_seconds is not None:
            self.clock.note_sync(self.mirror.last_job_seconds)
        manifest = self.latest or self._publish_local(step)
        ckpt_rel = self.local.rel("checkpoints")
        stale = self._remote_names - set(manifest.files)
        self.mirror.submit([f"{ckpt_rel}/{n}" for n in manifest.files] + self._log_files(), manifest=manifest,
                           manifest_dir=ckpt_rel, delete=[f"{ckpt_rel}/{n}" for n in sorted(stale)])
        self._remote_names = set(manifest.files)
        self._last_sync_step = step
        self.events.add("mirror", step, remote=self.mirror.remote_root)

    def _final_timeout(self) -> float:
        """Seconds the final mirror may take: run.final_sync_timeout, never past the budget (but at least 5 s)."""
        left = self.clock.remaining()
        return self.final_sync_timeout if left is None else max(5.0, min(self.final_sync_timeout, left - 30))

    def mirror_last_good(self) -> Optional[bool]:
        """After a local save failed (a full disk), mirror the last checkpoints that were saved whole and wait for it;
        writes nothing locally. None without a mirror or a saved checkpoint, else whether the mirror finished."""
        if self.mirror is None or self.latest is None:
            return None
        if self.latest.step > self._last_sync_step:
            ckpt_rel = self.local.rel("checkpoints")
            self.mirror.submit([f"{ckpt_rel}/{n}" for n in self.latest.files], manifest=self.latest,
                               manifest_dir=ckpt_rel)
        done = self.mirror.wait(self._final_timeout())
        self.say(f"Mirror of episode {self.latest.step} to {self.mirror.remote_root}: "
                 f"{'done' if done else 'not finished; the remote keeps its last complete copy'}.")
        return done

    def finish(self, step: int) -> None:
        """Final mirror at the end of the session, waited for within the budget."""
        if self.mirror is None:
            return
        self.sync(step)
        timeout = self._final_timeout()
        t0 = time.monotonic()
        self.final_sync_ok = self.mirror.wait(timeout)
        if self.final_sync_ok:
            self.say(f"Mirrored to {self.mirror.remote_root} in {time.monotonic() - t0:.1f} s.")
        else:
            self.say(f"Warning: the mirror to {self.mirror.remote_root} did not finish within {timeout:.0f} s; "
                     f"local checkpoints in {self.local.checkpoints} are complete, and the next run resumes "
                     "from the newest valid copy of either.")
