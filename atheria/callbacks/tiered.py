"""Two-tier checkpoints: Lightning's ModelCheckpoint on fast local disk, mirrored in the background to durable
storage. Lightning's own class serves the local tier; it falls short on stopping (it saves only on its cadence),
on remote dirpaths (resume cannot find them; pruning can delete the resumed-from file) and on a 'latest' pointer,
which the framework-neutral Shelf keeps, with the mirror."""
from __future__ import annotations

import glob
import os
import re
import threading
import time
from functools import partial
from typing import Any, Optional
from weakref import proxy

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from typing_extensions import override

from atheria.callbacks.evaluation import HeldOutEvaluation
from atheria.callbacks.history import EpisodeHistory
from atheria.errors import one_line
from atheria.loggers import sync_rows, upload_best
from atheria.session.shelf import BEST_FINAL, LAST, Shelf
from atheria.storage.atomic import link_atomic, put_file_atomic, torch_bytes, write_bytes_atomic
from atheria.storage.manifest import Manifest, read_manifest
from atheria.storage.writes import WriteQueue

_STEP_IN_NAME = re.compile(r"ep(\d+)")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a hidden temp file beside its name, fsyncs it and renames it into place, so a kill
    or a full disk never leaves a partial file under a checkpoint's name. Lightning's own save stages the file in
    the system temp dir and moves it, which is a copy into the final name when that dir is on another disk. With
    `writes`, the checkpoint is serialised on the training thread (a point-in-time copy that training cannot change
    afterwards) and written, like every removal, in order on the queue's thread."""

    PENDING = 1  # checkpoints serialised and not yet written, at most: a save waits for the one before it

    def __init__(self, writes: Optional[WriteQueue] = None) -> None:
        super().__init__()
        self.writes = writes
        self._pending = threading.BoundedSemaphore(self.PENDING)

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        data = torch_bytes(checkpoint)
        if self.writes is None:
            write_bytes_atomic(str(path), data)
            return
        while not self._pending.acquire(timeout=0.05):
            self.writes.check()  # the write before failed: its job, and the release, will never run

        def write() -> None:
            try:
                write_bytes_atomic(str(path), data)
            finally:
                self._pending.release()

        try:
            self.writes.submit(write)
        except BaseException:
            self._pending.release()
            raise

    @override
    def remove_checkpoint(self, path: Any) -> None:
        if self.writes is None:
            super().remove_checkpoint(path)
        else:
            self.writes.submit(partial(super().remove_checkpoint, path))


def _link_or_copy(src: str, dst: str) -> None:
    """dst as a hard link to local file src, else (a filesystem without hard links) an atomic copy of it."""
    if not link_atomic(src, dst):
        put_file_atomic(src, dst)


class TieredCheckpoint(ModelCheckpoint):
    """Saves every `save_every` episodes and at any stop, keeps the best N by `monitor` plus last.ckpt, copies the
    best (else the last) to best-final.ckpt at the end of every session, writes latest.json, and mirrors
    checkpoints and logs every `sync_every` episodes and at the end. `evaluation`: held-out figures measured off the
    training thread (atheria.callbacks.evaluation); when given, only checkpoints saved at an evaluated episode
    compete for the best N, by its `monitor`: each is written at its save (last.ckpt a link to it) and ranked when
    its figures arrive (removed if they do not place it among the best N), and the saves between only renew
    last.ckpt. `validate_every`: the episodes
    between Lightning's validations (0: none), whose `monitor` then ranks the checkpoints: a save at a validated
    episode waits for that validation (Lightning's own deferral, which it applies only at an epoch's end), so that
    it is ranked by its own figures, not the previous validation's; the saves between only renew last.ckpt.
    Default: every save competes, by the logged `monitor`. `history`: the run's metrics, handed to the loggers and
    the monitors before each save is ranked and written, and read at the start of a session to rank the files on
    disk the resumed state does not know of.

    The files are written in the background (`writes`, which the trainer's AtomicCheckpointIO must share): each
    save's metrics.csv fsync, write, last.ckpt link, removals, latest.json and mirror job run in that order on the
    queue's thread, so latest.json only ever names files already whole; the end of training waits for them."""

    def __init__(self, shelf: Shelf, save_every: int, sync_every: int, keep_best: int,
                 monitor: str = "train/loss_smooth", mode: str = "min",
                 evaluation: Optional[HeldOutEvaluation] = None, validate_every: int = 0,
                 history: Optional[EpisodeHistory] = None) -> None:
        super().__init__(dirpath=shelf.local.checkpoints, filename="ep{step:06d}", auto_insert_metric_name=False,
                         every_n_train_steps=save_every, save_last=True, monitor=monitor, mode=mode,
                         save_top_k=keep_best, enable_version_counter=False)
        self.local, self.clock, self.mirror = shelf.local, shelf.clock, shelf.mirror
        self.sync_every = sync_every
        self.evaluation, self.validate_every, self.history = evaluation, validate_every, history
        self.shelf = shelf
        self.writes = WriteQueue()
        self._steps: dict[str, int] = {}
        self._synced = -1  # the step of the last mirror job queued
        self._doomed: list[str] = []  # files dropped from the best N, still named by latest.json
        self._unranked: dict[int, str] = {}  # step -> the file saved at an evaluated episode, awaiting its figures
        self._ranking: Optional[str] = None  # that file, while ModelCheckpoint ranks it (written already)

    # local tier ----------------------------------------------------------------------------------------------
    @override
    def _save_topk_checkpoint(self, trainer: "pl.Trainer", monitor_candidates: dict[str, Any]) -> None:
        if self.validate_every and not trainer.validating:
            return  # between validations: the monitor is the last validation's, not this episode's
        if self.evaluation is None:
            super()._save_topk_checkpoint(trainer, monitor_candidates)
        elif self.evaluation.evaluating(trainer.global_step):  # written now, ranked when its figures arrive
            filepath = self.format_checkpoint_name(monitor_candidates)
            self._save_checkpoint(trainer, filepath)
            self._unranked[trainer.global_step] = filepath

    def _rank(self, trainer: "pl.Trainer", figures: list[tuple[int, dict[str, float]]]) -> bool:
        """Rank each checkpoint saved at an evaluated episode by its figures, now that they arrived: among the best N
        (which may drop another) or removed. Whether any was ranked."""
        ranked = False
        for step, scores in figures:
            if self.monitor not in scores:
                continue  # nothing to rank it by: left unranked
            filepath = self._unranked.pop(step, None)
            if filepath is None:
                continue  # no file saved there (a save Lightning skipped)
            candidates = {**{k: torch.tensor(v) for k, v in scores.items()}, "step": torch.tensor(step),
                          "epoch": torch.tensor(trainer.current_epoch)}
            self._ranking = self.format_checkpoint_name(candidates)  # the name ModelCheckpoint gives it
            try:
                super()._save_topk_checkpoint(trainer, candidates)
            finally:
                self._ranking = None
            if self.format_checkpoint_name(candidates) not in self.best_k_models:
                self._doomed.append(filepath)
            ranked = True
        return ranked

    @override
    def _monitor_candidates(self, trainer: "pl.Trainer") -> dict[str, Any]:
        if self.history is not None:  # Lightning asks for the candidates before every save, and only then
            self.history.deliver(trainer)
        candidates = super()._monitor_candidates(trainer)
        if self.validate_every and trainer.training and trainer.global_step % self.validate_every == 0:
            candidates.pop(self.monitor, None)  # stale until this episode's validation: Lightning defers the save
        if self.evaluation is not None:
            # Lightning defers every save, last.ckpt's too, while the monitor is missing; it is a placeholder here,
            # which _save_topk_checkpoint never ranks (_rank does, by the evaluation's figures).
            candidates.setdefault(self.monitor, torch.tensor(float("inf")))
        return candidates

    @override
    def _save_checkpoint(self, trainer: "pl.Trainer", filepath: str) -> None:
        if filepath == self._ranking:
            return  # written at its episode; ModelCheckpoint has just placed it among the best N
        t0, began, name = time.monotonic(), [], os.path.basename(filepath)
        if trainer.is_global_zero and self._last_global_step_saved != trainer.global_step:
            # A new episode's save begins once the one before is whole, linked as last.ckpt and published: a kill
            # while this one is written then loses at most the interval before it.
            self.writes.drain()
        if trainer.is_global_zero:  # no checkpoint is durable before the metrics rows of the episodes it holds
            self.writes.submit(lambda: (began.append(time.monotonic()), sync_rows(trainer)))
        if not self._link_last(trainer, filepath):
            super()._save_checkpoint(trainer, filepath)  # serialised here, written on the queue
        serialised = time.monotonic() - t0
        self._steps[name] = trainer.global_step
        if not trainer.is_global_zero:
            self.clock.note_save(serialised)
            return
        # The save's time is its serialisation here plus its writes there, noted once they are done.
        self.writes.submit(lambda: self.clock.note_save(serialised + time.monotonic() - began[0]))
        self.writes.submit(partial(self.shelf.events.add, "save", trainer.global_step, file=name))

    def _link_last(self, trainer: "pl.Trainer", filepath: str) -> bool:
        """last.ckpt of the episode a cadence checkpoint was just written at: a hard link to that file, not a second
        serialisation and write of the same state (half the checkpoint I/O). Lightning's save_last="link" is a
        symlink to the newest file saved at any step, which would leave last.ckpt behind on episodes that are not
        among the best N, and which a mirror or Drive copy would not keep as a file. False: save as usual."""
        previous = self._last_checkpoint_saved
        if (os.path.basename(filepath) != LAST or not previous or previous == filepath
                or self._last_global_step_saved != trainer.global_step):
            return False
        if trainer.is_global_zero:
            self.writes.submit(partial(_link_or_copy, previous, filepath))
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
        return True

    @override
    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        super().on_train_start(trainer, pl_module)
        if trainer.is_global_zero:  # rank zero keeps the files and the mirror
            self.shelf.open(trainer.global_step)
            self._synced = self.shelf.last_sync_step
            known = read_manifest(self.local.checkpoints)  # the steps of files kept from earlier sessions (best-final)
            self._steps = {**({n: e.step for n, e in known.files.items()} if known else {}), **self._steps}
        self._reconcile(trainer)  # on every rank: a rank whose best N differed could wait alone in a save's barrier

    def _reconcile(self, trainer: "pl.Trainer") -> None:
        """Make the cadence files on disk the best N: rank those the resumed state does not know of (ranked after it
        was saved, or left by a kill before their removal; all of them when the experiment moved to another
        folder) by their episode's `monitor` in the run's history, and remove the rest: saved at an evaluated
        episode whose figures never arrived. Files past the episode resumed from (`ckpt_path` an older file) stay."""
        known = {os.path.basename(p) for p in self.best_k_models}
        resumed = os.path.abspath(trainer.ckpt_path) if trainer.ckpt_path else None
        found = {self._step_of(os.path.basename(p)): os.path.abspath(p)
                 for p in glob.glob(os.path.join(glob.escape(self.local.checkpoints), "ep*.ckpt"))}
        strays = {s: p for s, p in sorted(found.items())  # files past the resumed episode stay as they are: a
                  if os.path.basename(p) not in known and p != resumed and s <= trainer.global_step}  # user's choice
        if not strays:
            return
        self._unranked.update(strays)
        measured = self.history.episodes if self.history is not None else {}
        self._rank(trainer, [(s, measured.get(s, {})) for s in strays])
        self._doomed += [p for s, p in strays.items() if s in self._unranked]
        self._unranked.clear()
        if trainer.is_global_zero:
            kept = {n: self._step_of(n) for n in self._names()}
            self.writes.submit(partial(self._publish_local, trainer.global_step, kept))
        self._remove_doomed(trainer)  # the strategy removes files on rank zero only

    @override
    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step, ranked = trainer.global_step, False
        saved_before = self._last_global_step_saved
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if trainer.should_stop and self._last_global_step_saved != step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self._last_global_step_saved = step
        if self.evaluation is not None:  # the last episode waits: the report at the end shows the final ranking
            last = trainer.should_stop or 0 <= trainer.max_steps <= step
            ranked = self._rank(trainer, self.evaluation.finished(trainer, wait=last))
        self._after_save(trainer, step, saved_before, ranked)
        if trainer.should_stop:
            self.writes.drain()  # the stop's files are whole before any end-of-training hook says it stopped

    @override
    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        step, saved_before = trainer.global_step, self._last_global_step_saved
        super().on_validation_end(trainer, pl_module)  # a save deferred to this validation happens here
        if self._defer_save_until_validation and saved_before == step and trainer.state.fn == TrainerFn.FITTING:
            # A stop saved last.ckpt before this episode's validation: rank the episode now, and renew last.ckpt
            # (a link to the ranked file) so that a resume from it knows the ranking.
            self._defer_save_until_validation = False
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
            saved_before = -1
        self._after_save(trainer, step, saved_before)

    @override
    def _remove_checkpoint(self, trainer: "pl.Trainer", filepath: str) -> None:
        self._doomed.append(filepath)  # removed once latest.json no longer names it (_after_save)

    def _after_save(self, trainer: "pl.Trainer", step: int, saved_before: int, ranked: bool = False) -> None:
        """Publish a save made at `step` just now (not before), or a new ranking, in latest.json, mirror a save when
        a sync is due, then remove the files they dropped from the best N."""
        saved = self._last_global_step_saved == step and saved_before != step
        if (saved or ranked) and trainer.is_global_zero:
            due = saved and self.sync_every > 0 and step - self._synced >= self.sync_every and not trainer.should_stop
            self._synced = step if due else self._synced
            kept = {n: self._step_of(n) for n in self._names()}  # as of now: the names change on this thread
            self.writes.submit(partial(self._publish_local, self._last_global_step_saved, kept, due))
        self._remove_doomed(trainer)

    def _remove_doomed(self, trainer: "pl.Trainer") -> None:
        doomed, self._doomed = self._doomed, []
        for path in doomed:
            trainer.strategy.remove_checkpoint(path)

    @override
    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        super().on_train_end(trainer, pl_module)
        if self.evaluation is not None:
            ranked = self._rank(trainer, self.evaluation.finished(trainer, wait=True))
            self._after_save(trainer, trainer.global_step, trainer.global_step, ranked)
        self.writes.drain()
        if not trainer.is_global_zero:  # under DDP, rank zero keeps the files and the mirror
            return
        best = self.best_model_path
        if not (best and os.path.isfile(best)):  # no cadence save yet (a session shorter than run.save_every)
            best = os.path.join(self.local.checkpoints, LAST)
            self._steps.setdefault(LAST, trainer.global_step)
        if os.path.isfile(best) and os.path.basename(best) != BEST_FINAL:
            target = os.path.join(self.local.checkpoints, BEST_FINAL)
            put_file_atomic(best, target)
            self._steps[BEST_FINAL] = self._step_of(os.path.basename(best))
            self._publish_local(trainer.global_step)
            self.writes.submit(partial(self._upload_best, trainer, target))  # beside the final mirror
        self.finish(trainer.global_step)

    def _upload_best(self, trainer: "pl.Trainer", path: str) -> None:
        try:  # a dashboard's copy is worth less than the run: its failure is a warning
            upload_best(trainer.loggers, path, self._steps[BEST_FINAL])
        except Exception as exc:
            self.shelf.say(f"Warning: could not upload {BEST_FINAL} to W&B ({one_line(exc)}).")

    @override
    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        try:  # the writes queued before the failure still land: latest.json then names the newest whole files
            self.writes.close()
        except Exception as exc:
            self.shelf.say(f"Warning: a checkpoint write failed as well ({one_line(exc)}).")

    @override
    def teardown(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        self.writes.close()

    # the 'latest' pointer and the remote tier, kept by the Shelf ---------------------------------------------
    def _step_of(self, name: str) -> int:
        if name in self._steps:
            return self._steps[name]
        found = _STEP_IN_NAME.search(name)
        return int(found.group(1)) if found else -1

    def _names(self) -> set[str]:
        """Checkpoint file names this run keeps: the best N, last.ckpt, best-final.ckpt (written yet or not)."""
        return {os.path.basename(p) for p in self.best_k_models} | {LAST, BEST_FINAL}

    def _publish_local(self, step: int, kept: Optional[dict[str, int]] = None, sync: bool = False) -> Manifest:
        """Write latest.json over the kept files (default: as of now) that exist, and queue a mirror job if `sync`."""
        kept = {n: self._step_of(n) for n in self._names()} if kept is None else kept
        manifest = self.shelf.publish(step, {n: s for n, s in kept.items()
                                             if os.path.isfile(os.path.join(self.local.checkpoints, n))})
        if sync:
            self.sync(step)
        return manifest

    def sync(self, step: int) -> None:
        """Queue checkpoints, the manifest and logs for the mirror; prune remote files no longer kept. Never blocks."""
        if self.mirror is not None and self.shelf.latest is None:
            self._publish_local(step)
        self.shelf.sync(step)

    def mirror_last_good(self) -> Optional[bool]:
        """After a local save failed (a full disk), mirror the last checkpoints that were saved whole and wait for it;
        writes nothing locally. None without a mirror or a saved checkpoint, else whether the mirror finished."""
        return self.shelf.mirror_last_good()

    def finish(self, step: int) -> None:
        """Final mirror at the end of the session, waited for within the budget."""
        if self.mirror is not None and self.shelf.latest is None:
            self._publish_local(step)
        self.shelf.finish(step)
