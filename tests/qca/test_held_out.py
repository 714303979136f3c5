"""Held-out evaluation and the trivial baselines: episodes no training run plays, the zero and best uniform laws
scored under the run's objective, qca/gain_over_trivial logged at each evaluation, best-N ranked by the held-out
loss of the very episode a checkpoint holds, and the baselines in the report, training_log.json and summary plot."""
import csv
import json
import threading
import time
from functools import partialmethod

import pytest
import torch
from PIL import Image

from atheria.qca import LossWeights, Physics, initial_state
from atheria.qca.baselines import Scoring, fit_uniform, gain_over, mean_terms, trivial_scores, uniform_law
from tests.helpers import load, train_in_process

NAME = "UNET_8ch_D4"


def scoring(objective="bounded", steps=6):
    return Scoring.of(Physics(steps=steps, noise=True), LossWeights(), objective, 0.8, 0.1)


def test_held_out_episodes_are_seeded_and_never_played_in_training():
    held = [initial_state(7, i, 1, 8, 4, held_out=True) for i in range(8)]
    assert all(torch.equal(h, initial_state(7, i, 1, 8, 4, held_out=True)) for i, h in enumerate(held))
    played = [initial_state(7, i, 1, 8, 4) for i in range(2000)]
    assert not any(torch.equal(h, p) for h in held for p in played)


@pytest.mark.parametrize("objective", ["bounded", "reference"])
def test_the_fitted_uniform_law_is_the_best_on_a_fine_grid(objective):
    states = [initial_state(0, i, 1, 16, 4, held_out=True) for i in range(2)]
    s = scoring(objective)
    c, loss = fit_uniform(states, s)
    fine = min(mean_terms(uniform_law(0.5 + i / 200, s.physics.gamma), states, s)["loss"] for i in range(201))
    assert loss <= fine + 1e-4, (c, loss, fine)
    assert s.physics.noise is False  # held-out episodes play without the noise curriculum: the same at every session


def test_the_zero_law_is_psi_decaying_by_gamma_alone():
    states = [initial_state(0, 0, 1, 16, 4, held_out=True)]
    s = scoring()
    scores = trivial_scores(states, s)
    zero = mean_terms(lambda x, memory=None: (torch.zeros_like(x), []), states, s)["loss"]
    assert scores["zero law"] == pytest.approx(zero, rel=1e-6)
    assert len(scores) == 2 and min(scores.values()) <= scores["zero law"]


def test_gain_is_the_share_of_the_trivial_loss_removed():
    assert gain_over(0.2, 0.15) == pytest.approx(0.25)
    assert gain_over(0.2, 0.2) == 0 and gain_over(0.2, 0.3) < 0
    assert gain_over(-2.0, -3.0) == pytest.approx(0.5)  # the reference objective's losses can be negative


def test_a_run_evaluates_at_saves_ranks_by_held_out_loss_and_reports_the_baselines(tmp_path, capsys):
    code = train_in_process(tmp_path, "run.total_episodes=12", "run.save_every=2", "run.eval_every=5",
                            "run.eval_episodes=2", "run.keep_best=2")
    assert code == 0
    out = capsys.readouterr().out
    assert "Trivial baselines on 2 held-out episodes (val/loss): zero law " in out
    logs = tmp_path / "logs" / NAME
    with open(logs / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    evaluated = [(float(r["episode"]), float(r["val/loss"]), float(r["qca/gain_over_trivial"])) for r in rows
                 if r.get("val/loss")]
    assert [e for e, _, _ in evaluated] == [6.0, 10.0]  # the first save at or past 5 and 10, once each

    log = json.loads((logs / "training_log.json").read_text())
    base = log["baselines"]
    assert base["metric"] == "val/loss" and base["episodes"] == 2 and set(base["scores"]) >= {"zero law"}
    best_trivial = min(base["scores"].values())
    for _, loss, gain in evaluated:
        assert gain == pytest.approx((best_trivial - loss) / abs(best_trivial), rel=1e-5)
    assert base["model_best"] == min(loss for _, loss, _ in evaluated)

    checkpoints = tmp_path / "checkpoints" / NAME
    ranked = sorted(p.name for p in checkpoints.glob("ep*.ckpt"))
    assert ranked == ["ep000006.ckpt", "ep000010.ckpt"]  # only evaluated saves compete for the best N
    best_step = min(evaluated, key=lambda t: t[1])[0]
    assert load(checkpoints / "best-final.ckpt")["global_step"] == best_step
    assert load(checkpoints / "last.ckpt")["global_step"] == 12
    saves = [json.loads(line) for line in (logs / "events.jsonl").read_text().splitlines()]
    assert [e["episode"] for e in saves if e.get("event") == "save" and e.get("file") == "last.ckpt"] == \
        [2, 4, 6, 8, 10, 12]  # the cadence saves go on between evaluations

    report = (logs / f"{NAME}_REPORT.md").read_text()
    assert "## Beside trivial baselines" in report and "| zero law |" in report
    assert "| this run, best evaluation |" in report
    summary = Image.open(logs / "training_summary.png")
    assert "held-out loss beside trivial baselines" in summary.info["Description"]


def test_with_evaluation_off_checkpoints_are_ranked_by_the_smoothed_training_loss(tmp_path):
    assert train_in_process(tmp_path, "run.eval_every=0", "run.keep_best=1") == 0
    rows = list(csv.DictReader(open(tmp_path / "logs" / NAME / "metrics.csv", newline="")))
    assert not any(r.get("val/loss") for r in rows)
    best = load(tmp_path / "checkpoints" / NAME / "best-final.ckpt")
    states = [v for k, v in best["callbacks"].items() if k.startswith("TieredCheckpoint")]
    assert states and states[0]["monitor"] == "train/loss_smooth"


def test_a_resumed_run_evaluates_each_due_episode_once_and_ranks_across_sessions(tmp_path):
    settings = ("run.save_every=2", "run.eval_every=5", "run.eval_episodes=2", "run.keep_best=1")
    assert train_in_process(tmp_path, "run.total_episodes=6", *settings) == 0
    assert train_in_process(tmp_path, "run.total_episodes=12", *settings) == 0  # resumes from episode 6
    rows = list(csv.DictReader(open(tmp_path / "logs" / NAME / "metrics.csv", newline="")))
    evaluated = [(float(r["episode"]), float(r["val/loss"])) for r in rows if r.get("val/loss")]
    assert [e for e, _ in evaluated] == [6.0, 10.0]
    best_step, _ = min(evaluated, key=lambda t: t[1])
    assert load(tmp_path / "checkpoints" / NAME / "best-final.ckpt")["global_step"] == best_step
    log = json.loads((tmp_path / "logs" / NAME / "training_log.json").read_text())
    assert log["baselines"]["model_best"] == min(loss for _, loss in evaluated)
    assert log["baselines"]["model_best_gain"] is not None  # read back from metrics.csv for an earlier session
    assert "| this run, best evaluation |" in (tmp_path / "logs" / NAME / f"{NAME}_REPORT.md").read_text()


@pytest.mark.parametrize("background", [True, None])
def test_the_evaluation_runs_beside_training_and_a_checkpoint_it_does_not_place_among_the_best_is_removed(
        tmp_path, monkeypatch, background):
    from atheria.callbacks.evaluation import HeldOutEvaluation
    from atheria.modules import qca

    evaluations, steps, scored = [], [], []

    def slow_mean_terms(law, states, scoring):  # a slow evaluation: training must not wait for it
        began = time.monotonic()
        time.sleep(0.5)
        out = mean_terms(law, states, scoring)
        evaluations.append((threading.current_thread().name, began, time.monotonic()))
        scored.append({k: v.clone() for k, v in law.state_dict().items()})  # the weights it scored
        return out

    def training_step(self, batch, batch_idx):
        steps.append(time.monotonic())
        return train_step(self, batch, batch_idx)

    train_step = qca.QCAModule.training_step
    monkeypatch.setattr(qca, "mean_terms", slow_mean_terms)
    monkeypatch.setattr(qca.QCAModule, "training_step", training_step)
    monkeypatch.setattr(HeldOutEvaluation, "__init__", partialmethod(HeldOutEvaluation.__init__, background=background))
    assert train_in_process(tmp_path, "run.total_episodes=12", "run.save_every=2", "run.eval_every=4",
                            "run.eval_episodes=2", "run.keep_best=1") == 0
    overlapped = any(began < t < ended for _, began, ended in evaluations for t in steps)
    if background:  # episodes ran meanwhile
        assert len(evaluations) == 3 and all(name.startswith("atheria-evaluation") for name, _, _ in evaluations)
        assert overlapped
    else:  # on the CPU, at its save on the training thread: a second thread would compete for the same cores
        assert [name for name, _, _ in evaluations] == ["MainThread"] * 3 and not overlapped

    rows = list(csv.DictReader(open(tmp_path / "logs" / NAME / "metrics.csv", newline="")))
    evaluated = {float(r["episode"]): float(r["val/loss"]) for r in rows if r.get("val/loss")}
    assert sorted(evaluated) == [4.0, 8.0, 12.0]
    checkpoints = tmp_path / "checkpoints" / NAME
    best = min(evaluated, key=evaluated.get)
    assert [p.name for p in checkpoints.glob("ep*.ckpt")] == [f"ep{int(best):06d}.ckpt"]  # the other two removed
    assert load(checkpoints / "best-final.ckpt")["global_step"] == best
    saved = load(checkpoints / "best-final.ckpt")["state_dict"]  # the copy scored is the law as of its episode
    weights = scored[sorted(evaluated).index(best)]
    assert all(torch.equal(saved[f"law.{k}"], v) for k, v in weights.items()) and weights
    assert load(checkpoints / "last.ckpt")["global_step"] == 12
    manifest = json.loads((checkpoints / "latest.json").read_text())
    assert sorted(manifest["files"]) == sorted(p.name for p in checkpoints.iterdir() if p.suffix == ".ckpt")


def test_a_resume_removes_a_checkpoint_whose_figures_never_arrived_and_ranks_one_whose_figures_did(tmp_path):
    settings = ("run.save_every=2", "run.eval_every=4", "run.eval_episodes=2", "run.keep_best=2")
    assert train_in_process(tmp_path, "run.total_episodes=8", *settings) == 0
    checkpoints, logs = tmp_path / "checkpoints" / NAME, tmp_path / "logs" / NAME
    # As after a kill: episode 8's file written, its figures lost (metrics.csv without them; last.ckpt, saved before
    # they arrived, does not know the file either); and a file saved at evaluated episode 6, whose figures
    # metrics.csv holds.
    rows = list(csv.DictReader(open(logs / "metrics.csv", newline="")))
    loss_at_4 = next(float(r["val/loss"]) for r in rows if r.get("val/loss") and float(r["episode"]) == 4)
    kept = [r for r in rows if not (r.get("val/loss") and float(r["episode"]) == 8)]
    kept.append({**next(r for r in rows if r.get("val/loss")), "episode": "6", "val/loss": str(loss_at_4 - 1)})
    with open(logs / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    (checkpoints / "ep000006.ckpt").write_bytes((checkpoints / "ep000004.ckpt").read_bytes())

    assert train_in_process(tmp_path, "run.total_episodes=10", *settings) == 0
    assert sorted(p.name for p in checkpoints.glob("ep*.ckpt")) == ["ep000004.ckpt", "ep000006.ckpt"]
    manifest = json.loads((checkpoints / "latest.json").read_text())
    assert "ep000008.ckpt" not in manifest["files"] and "ep000006.ckpt" in manifest["files"]
    best = load(checkpoints / "best-final.ckpt")["global_step"]
    assert best == 4  # ep000006.ckpt holds episode 4's state, ranked best by the figures metrics.csv gave episode 6


def test_an_evaluation_runs_in_the_background_only_on_an_accelerator_in_a_run_of_one_process():
    from atheria.callbacks.evaluation import in_background

    assert in_background(torch.device("cuda", 0), 1)
    assert not in_background(torch.device("cpu"), 1)  # a second thread competes for the same cores
    assert not in_background(torch.device("cuda", 0), 2)  # DDP: the ranks rank each checkpoint together


def test_a_budget_stop_waits_for_the_evaluation_in_flight_and_the_next_session_does_not_repeat_it(
        tmp_path, monkeypatch, budget_ends_at):
    from atheria.callbacks.evaluation import HeldOutEvaluation
    from atheria.modules import qca

    threads = []

    def slow_mean_terms(law, states, scoring):  # still running when the stop comes
        time.sleep(1.0)
        threads.append(threading.current_thread().name)
        return mean_terms(law, states, scoring)

    monkeypatch.setattr(qca, "mean_terms", slow_mean_terms)
    monkeypatch.setattr(HeldOutEvaluation, "__init__", partialmethod(HeldOutEvaluation.__init__, background=True))
    settings = ("run.save_every=2", "run.eval_every=4", "run.eval_episodes=2", "run.keep_best=1")
    budget_ends_at["step"] = 4  # the stop at the evaluated save: its evaluation has just begun
    assert train_in_process(tmp_path, "run.total_episodes=8", *settings) == 0
    logs, checkpoints = tmp_path / "logs" / NAME, tmp_path / "checkpoints" / NAME
    assert json.loads((logs / "status.json").read_text())["state"] == "stopped-budget"
    assert threads == ["atheria-evaluation_0"]
    rows = list(csv.DictReader(open(logs / "metrics.csv", newline="")))
    assert [float(r["episode"]) for r in rows if r.get("val/loss")] == [4.0]  # its figures before the session ended
    assert [p.name for p in checkpoints.glob("ep*.ckpt")] == ["ep000004.ckpt"]  # ranked, kept
    assert load(checkpoints / "best-final.ckpt")["global_step"] == 4
    assert "ep000004.ckpt" in json.loads((checkpoints / "latest.json").read_text())["files"]

    budget_ends_at["step"] = None
    assert train_in_process(tmp_path, "run.total_episodes=8", *settings) == 0
    rows = list(csv.DictReader(open(logs / "metrics.csv", newline="")))
    assert [float(r["episode"]) for r in rows if r.get("val/loss")] == [4.0, 8.0]  # 4 not evaluated again
    assert len(threads) == 2
