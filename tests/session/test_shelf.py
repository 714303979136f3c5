"""Shelf without a framework: latest.json over the kept checkpoints (last.ckpt a link, hashed once), the mirror of
them with the logs (pruned remotely as locally, never over a later remote run), and the session-start clean-up."""
import json
import os
import uuid
from pathlib import Path

import pytest

import atheria.session.shelf as shelf_module
from atheria.session.clock import BudgetClock
from atheria.session.shelf import LAST, Shelf
from atheria.storage.atomic import sha256_file
from atheria.storage.layout import Layout
from atheria.storage.manifest import Manifest, file_entry, read_manifest
from atheria.storage.mirror import Mirror
from tests import faults
from tests.helpers import wait_for

NAME = "exp"


@pytest.fixture
def local(tmp_path) -> Layout:
    layout = Layout(str(tmp_path / "local"), NAME)
    os.makedirs(layout.checkpoints)
    os.makedirs(layout.logs)
    return layout


@pytest.fixture
def remote(tmp_path) -> str:
    folder = tmp_path / "remote"
    folder.mkdir()
    return str(folder)


@pytest.fixture
def mirrors():
    """mirror(local, remote): a quick Mirror, closed after the test."""
    made = []

    def mirror(local: Layout, remote: str) -> Mirror:
        made.append(Mirror(local.root, remote, retries=0, backoff=0.01, say=lambda line: None))
        return made[-1]

    yield mirror
    for m in made:
        m.close(10)


def save(local: Layout, name: str, payload: bytes) -> Path:
    path = Path(local.checkpoints) / name
    path.write_bytes(payload)
    return path


def link_last(local: Layout, name: str) -> None:
    last = Path(local.checkpoints) / LAST
    last.unlink(missing_ok=True)
    os.link(Path(local.checkpoints) / name, last)


def test_publish_lists_the_kept_files_with_sizes_hashes_and_steps(local):
    save(local, "ep000002.ckpt", b"two")
    save(local, "ep000004.ckpt", b"four!")
    save(local, "ep000006.ckpt", b"six")  # saved, not among the kept
    link_last(local, "ep000004.ckpt")
    shelf = Shelf(local, BudgetClock(None), say=lambda line: None)
    manifest = shelf.publish(4, {"ep000002.ckpt": 2, "ep000004.ckpt": 4, LAST: 4})
    assert read_manifest(local.checkpoints) == manifest == shelf.latest
    assert (manifest.step, manifest.checkpoint) == (4, LAST)
    assert sorted(manifest.files) == ["ep000002.ckpt", "ep000004.ckpt", LAST]
    four = manifest.files["ep000004.ckpt"]
    assert (four.size, four.step, four.sha256) == (5, 4, sha256_file(Path(local.checkpoints) / "ep000004.ckpt"))
    assert manifest.files[LAST] == four and manifest.files["ep000002.ckpt"].step == 2


def test_a_file_is_hashed_once_under_all_its_names_until_its_bytes_change(local, monkeypatch):
    hashed = []
    monkeypatch.setattr(shelf_module, "sha256_file", lambda path: hashed.append(os.path.basename(path)) or "h")
    shelf = Shelf(local, BudgetClock(None), say=lambda line: None)
    save(local, "ep000002.ckpt", b"two")
    link_last(local, "ep000002.ckpt")
    shelf.publish(2, {"ep000002.ckpt": 2, LAST: 2})
    assert len(hashed) == 1  # last.ckpt is the same file
    shelf.publish(2, {"ep000002.ckpt": 2, LAST: 2})
    assert len(hashed) == 1
    save(local, "ep000004.ckpt", b"four")
    link_last(local, "ep000004.ckpt")
    shelf.publish(4, {"ep000002.ckpt": 2, "ep000004.ckpt": 4, LAST: 4})
    assert hashed == ["ep000002.ckpt", "ep000004.ckpt"]


def test_the_session_start_drops_leftovers_of_killed_saves_and_uploads_only(local):
    leftovers = [Path(local.checkpoints) / ".ep000004.ckpt.partial-1a2b",
                 Path(local.checkpoints) / f".last.ckpt{shelf_module.SNAPSHOT_MARK}0badc0de-123",
                 Path(local.logs) / f".status.json{shelf_module.SNAPSHOT_MARK}0badc0de-456",
                 Path(local.logs) / ".metrics.csv.partial-9"]
    kept = [save(local, "ep000002.ckpt", b"two"), Path(local.checkpoints) / ".lock", Path(local.logs) / "status.json",
            Path(local.logs) / "metrics.csv"]
    for path in leftovers + kept[1:]:
        path.write_bytes(b"x")
    shelf = Shelf(local, BudgetClock(None), say=lambda line: None)
    shelf.open(2)
    assert [p for p in leftovers if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert (shelf.last_sync_step, shelf.remote_floor) == (2, -1)


def test_the_session_start_clean_up_spares_this_sessions_uploads_and_drops_older_leftovers(local, tmp_path) -> None:
    """status.json is sent before the checkpoint callback's start clears a killed session's temp files: the snapshots
    of this session's mirror must survive the clean-up (CI saw an upload fail and the mirror stall 15 s), while older
    leftovers go."""
    (tmp_path / "durable").mkdir()
    remote = faults.faulty(f"shelf-{uuid.uuid4().hex[:8]}", str(tmp_path / "durable"), bandwidth=500_000)
    status = Path(local.logs) / "status.json"
    status.write_bytes(os.urandom(300_000))  # 0.6 s on the wire: the checkpoint's job waits behind it
    manifest = Manifest(step=3, checkpoint=LAST, files={LAST: file_entry(save(local, LAST, os.urandom(1000)), 3)})
    leftovers = [Path(local.logs) / ".status.json.mirror-0badc0de-123456789abc",
                 Path(local.checkpoints) / ".last.ckpt.mirror-0badc0de-123456789abc",
                 Path(local.checkpoints) / ".last.ckpt.partial-0123"]
    for path in leftovers:
        path.write_bytes(b"killed mid-upload")
    mirror = Mirror(local.root, remote.url, retries=0, backoff=0.01)
    mirror.submit([local.rel("logs", "status.json")])
    wait_for(lambda: len([n for n in os.listdir(local.logs) if ".mirror-" in n]) == 2, timeout=5, every=0.001)
    ckpt_rel = local.rel("checkpoints")
    mirror.submit([f"{ckpt_rel}/{LAST}"], manifest=manifest, manifest_dir=ckpt_rel)  # frozen now, sent after status
    Shelf(local, BudgetClock(None), mirror).open(0)
    assert mirror.close(timeout=30)
    assert mirror.failures == 0
    assert (Path(remote.root) / local.rel("logs", "status.json")).read_bytes() == status.read_bytes()
    assert read_manifest(f"{remote.url}/{ckpt_rel}") == manifest
    assert not [p for p in leftovers if p.exists()]
    assert not [n for folder in (local.logs, local.checkpoints) for n in os.listdir(folder) if n.startswith(".")]


def test_without_a_mirror_nothing_is_mirrored(local):
    shelf = Shelf(local, BudgetClock(None), say=lambda line: None)
    save(local, "ep000002.ckpt", b"two")
    shelf.publish(2, {"ep000002.ckpt": 2})
    shelf.sync(2)
    shelf.finish(2)
    assert shelf.mirror_last_good() is None and shelf.final_sync_ok is None and shelf.last_sync_step == -1


def test_sync_mirrors_the_kept_files_and_logs_and_prunes_what_local_pruned(local, remote, mirrors):
    said = []
    mirror = mirrors(local, remote)
    shelf = Shelf(local, BudgetClock(None), mirror, say=said.append)
    shelf.open(0)
    shelf.sync(0)  # nothing published yet: nothing to send
    assert mirror.wait(10) and not os.listdir(remote)
    (Path(local.logs) / "metrics.csv").write_text("step,loss\n2,0.5\n")
    save(local, "ep000002.ckpt", b"two")
    link_last(local, "ep000002.ckpt")
    shelf.publish(2, {"ep000002.ckpt": 2, LAST: 2})
    shelf.sync(2)
    assert mirror.wait(10)
    ckpts = Path(remote) / "checkpoints" / NAME
    assert sorted(p.name for p in ckpts.iterdir()) == ["ep000002.ckpt", LAST, "latest.json"]
    assert (Path(remote) / "logs" / NAME / "metrics.csv").read_text() == "step,loss\n2,0.5\n"
    assert shelf.last_sync_step == 2
    os.remove(save(local, "ep000004.ckpt", b"four").with_name("ep000002.ckpt"))  # keep-best 1: episode 2 pruned
    link_last(local, "ep000004.ckpt")
    shelf.publish(4, {"ep000004.ckpt": 4, LAST: 4})
    shelf.finish(4)
    assert shelf.final_sync_ok is True and said[-1].startswith(f"Mirrored to {remote} in ")
    assert sorted(p.name for p in ckpts.iterdir()) == ["ep000004.ckpt", LAST, "latest.json"]
    assert (ckpts / LAST).read_bytes() == b"four" and json.loads((ckpts / "latest.json").read_text())["step"] == 4
    events = [json.loads(line) for line in (Path(local.logs) / "events.jsonl").read_text().splitlines()]
    assert [(e["event"], e["episode"], e["remote"]) for e in events] == [("mirror", 2, remote), ("mirror", 4, remote)]


def test_a_run_behind_the_remote_is_held_until_it_passes_it(local, remote, mirrors, tmp_path):
    later = Layout(remote, NAME)
    os.makedirs(later.checkpoints)
    Path(later.checkpoints, "ep000010.ckpt").write_bytes(b"ten")  # a later run's file, no manifest
    said = []
    mirror = mirrors(local, remote)
    shelf = Shelf(local, BudgetClock(None), mirror, say=said.append)
    shelf.open(0)
    assert shelf.remote_floor == 10
    save(local, "ep000002.ckpt", b"two")
    shelf.publish(2, {"ep000002.ckpt": 2})
    shelf.sync(2)
    shelf.sync(2)
    assert mirror.wait(10) and sorted(os.listdir(later.checkpoints)) == ["ep000010.ckpt"]
    assert said == [f"The remote {remote} holds episode 10 of {NAME}, later than this run's 2: not mirroring over it "
                    "until this run passes it (use another name= to keep both)"]
    assert shelf.mirror_last_good() is None
    save(local, "ep000012.ckpt", b"twelve")
    shelf.publish(12, {"ep000012.ckpt": 12})
    shelf.sync(12)
    assert mirror.wait(10) and (Path(later.checkpoints) / "ep000012.ckpt").read_bytes() == b"twelve"


def test_after_a_failed_save_the_last_good_checkpoints_are_mirrored_and_waited_for(local, remote, mirrors):
    said = []
    shelf = Shelf(local, BudgetClock(None), mirrors(local, remote), say=said.append)
    shelf.open(0)
    save(local, "ep000002.ckpt", b"two")
    shelf.publish(2, {"ep000002.ckpt": 2})
    assert shelf.mirror_last_good() is True
    assert (Path(remote) / "checkpoints" / NAME / "ep000002.ckpt").read_bytes() == b"two"
    assert said == [f"Mirror of episode 2 to {remote}: done."]


@pytest.mark.parametrize("max_hours,elapsed,timeout", [(None, 0.0, 600.0), (1.0, 0.0, 600.0), (1.0, 3400.0, 170.0),
                                                       (1.0, 3590.0, 5.0)])
def test_the_final_mirror_waits_at_most_what_the_budget_leaves(local, max_hours, elapsed, timeout):
    clock = BudgetClock(max_hours, start=0.0, now=lambda: elapsed)
    assert Shelf(local, clock, say=lambda line: None)._final_timeout() == timeout
