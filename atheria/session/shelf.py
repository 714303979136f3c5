"""An experiment's checkpoint dir as the two tiers see it, framework-neutral: the files a run keeps and their steps,
the latest.json naming them, and mirroring them with the logs in the background. TieredCheckpoint adapts it to
Lightning's ModelCheckpoint; the RL scheduler's loop uses it as is."""
from __future__ import annotations

import contextlib
import glob
import os
import time
from typing import Callable, Optional

from atheria.session.clock import BudgetClock
from atheria.session.events import EventLog
from atheria.storage.atomic import sha256_file
from atheria.storage.finder import name_step
from atheria.storage.layout import Layout
from atheria.storage.manifest import FileEntry, Manifest, read_manifest, write_manifest
from atheria.storage.mirror import SNAPSHOT_MARK, Mirror
from atheria.storage.paths import url_to_fs

LAST, BEST_FINAL = "last.ckpt", "best-final.ckpt"


class Shelf:
    """Publishes latest.json over the kept checkpoints and mirrors them (never blocking but at the end, within the
    budget); files pruned locally are pruned remotely, never the one latest.json names."""

    def __init__(self, local: Layout, clock: BudgetClock, mirror: Optional[Mirror] = None,
                 final_sync_timeout: float = 600.0, say: Callable[[str], None] = print) -> None:
        self.local, self.clock, self.mirror, self.say = local, clock, mirror, say
        self.final_sync_timeout = final_sync_timeout
        self.events = EventLog(local.logs)
        self.latest: Optional[Manifest] = None
        self.final_sync_ok: Optional[bool] = None
        self.last_sync_step = -1
        self._hashes: dict[tuple[int, int, int, int], str] = {}  # (device, inode, size, mtime) -> sha256
        self._remote_names: set[str] = set()
        self.remote_floor = -1  # the newest step on the remote at the start: never written over by an older one
        self._held = False

    def open(self, step: int) -> None:
        """Session start: drop temp files of saves and uploads a kill cut short (the caller holds the experiment's
        lock), learn which files the remote's latest.json lists, and the newest step the remote holds."""
        self.last_sync_step = step
        for folder in (self.local.checkpoints, self.local.logs):
            for pattern in (".*.partial-*", f".*{SNAPSHOT_MARK}*"):
                for leftover in glob.glob(os.path.join(glob.escape(folder), pattern)):
                    if self.mirror is not None and self.mirror.owns(leftover):
                        continue  # this session's upload in flight (status.json is sent before this runs)
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(leftover)
        if self.mirror is not None:
            remote_dir = f"{self.mirror.remote_root.rstrip('/')}/{self.local.rel('checkpoints')}"
            try:
                published = read_manifest(remote_dir)
                fs, path = url_to_fs(remote_dir)
                try:
                    names = [os.path.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)]
                except FileNotFoundError:
                    names = []
            except Exception:  # a remote that is down now is the mirror's to report and retry
                published, names = None, []
            self._remote_names = set(published.files) if published else set()
            steps = [step for step in map(name_step, names) if step is not None]
            self.remote_floor = max([published.step if published else -1, *steps])

    def publish(self, step: int, kept: dict[str, int]) -> Manifest:
        """Write the local latest.json over the kept files (name: step), last.ckpt as the pointer. A file is hashed
        only when its bytes are new: checkpoints are replaced, never rewritten in place, so a file (inode) of the
        same size and mtime holds the same bytes under any of its names (last.ckpt is a hard link to the cadence
        checkpoint of its episode)."""
        files: dict[str, FileEntry] = {}
        hashes: dict[tuple[int, int, int, int], str] = {}
        for name, file_step in sorted(kept.items()):
            path = os.path.join(self.local.checkpoints, name)
            st = os.stat(path)
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            hashes[key] = self._hashes.get(key) or hashes.get(key) or sha256_file(path)
            files[name] = FileEntry(size=st.st_size, sha256=hashes[key], step=int(file_step))
        self._hashes = hashes
        manifest = Manifest(step=step, checkpoint=LAST, files=files)
        write_manifest(self.local.checkpoints, manifest)
        self.latest = manifest
        return manifest

    def log_files(self) -> list[str]:
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
        """Queue the published checkpoints, the manifest and the logs for the mirror; prune remote files no longer
        kept. Never blocks. Before the first publish there is nothing to mirror."""
        if self.mirror is None or self.latest is None or self._behind_remote():
            return
        if self.mirror.last_job_seconds is not None:
            self.clock.note_sync(self.mirror.last_job_seconds)
        manifest = self.latest
        ckpt_rel = self.local.rel("checkpoints")
        stale = self._remote_names - set(manifest.files)
        self.mirror.submit([f"{ckpt_rel}/{n}" for n in manifest.files] + self.log_files(), manifest=manifest,
                           manifest_dir=ckpt_rel, delete=[f"{ckpt_rel}/{n}" for n in sorted(stale)])
        self._remote_names = set(manifest.files)
        self.last_sync_step = step
        self.events.add("mirror", step, remote=self.mirror.remote_root)

    def _behind_remote(self) -> bool:
        """True (said once) while this run is at an earlier step than the remote held at the start: mirroring would
        write an older run over later checkpoints (a deliberate ckpt_path=null, or an older ckpt_path=PATH)."""
        behind = self.latest is not None and self.latest.step < self.remote_floor
        if behind and self.latest is not None and not self._held:
            self.say(f"The remote {self.mirror.remote_root if self.mirror else ''} holds episode {self.remote_floor} "
                     f"of {self.local.name}, later than this run's {self.latest.step}: not mirroring over it until "
                     "this run passes it (use another name= to keep both)")
        self._held = behind
        return behind

    def _final_timeout(self) -> float:
        """Seconds the final mirror may take: the configured timeout, never past the budget (but at least 5 s)."""
        left = self.clock.remaining()
        return self.final_sync_timeout if left is None else max(5.0, min(self.final_sync_timeout, left - 30))

    def mirror_last_good(self) -> Optional[bool]:
        """After a local save failed (a full disk), mirror the last checkpoints that were saved whole and wait for it;
        writes nothing locally. None without a mirror or a saved checkpoint, else whether the mirror finished."""
        if self.mirror is None or self.latest is None or self._behind_remote():
            return None
        if self.latest.step > self.last_sync_step:
            ckpt_rel = self.local.rel("checkpoints")
            self.mirror.submit([f"{ckpt_rel}/{n}" for n in self.latest.files], manifest=self.latest,
                               manifest_dir=ckpt_rel)
        done = self.mirror.wait(self._final_timeout())
        self.say(f"Mirror of episode {self.latest.step} to {self.mirror.remote_root}: "
                 f"{'done' if done else 'not finished; the remote keeps its last complete copy'}.")
        return done

    def finish(self, step: int) -> None:
        """Final mirror at the end of the session, waited for within the budget."""
        if self.mirror is None or self._behind_remote():
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
