"""The end-of-session report: training_log.json and {name}_REPORT.md in the logs dir, written after every completed,
budget-stopped, signalled or requested stop and before the final mirror, which carries both to the remote."""
from __future__ import annotations

import os
import shlex
from typing import Any, Callable, Optional

import lightning.pytorch as pl
import yaml
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from atheria.callbacks.history import EpisodeHistory
from atheria.callbacks.plots import LIVE_NAME, SUMMARY_NAME
from atheria.callbacks.tiered import BEST_FINAL
from atheria.observe.training_log import LOG_NAME, dumps, training_log
from atheria.session.events import read_events
from atheria.session.outcome import SessionState
from atheria.session.status import read_status
from atheria.storage.atomic import write_bytes_atomic
from atheria.storage.layout import Layout
from atheria.storage.manifest import read_manifest

OUTCOMES = {
    SessionState.COMPLETED: "Completed all {total} episodes.",
    SessionState.STOPPED_BUDGET: "Stopped at episode {episode}/{total} to stay within the session budget; "
                                 "run the same command in the next session to continue.",
    SessionState.STOPPED_SIGNAL: "Stopped at episode {episode}/{total} on a signal (Ctrl+C or SIGTERM); "
                                 "run the same command to continue.",
    SessionState.STOPPED_REQUEST: "Stopped at episode {episode}/{total} on request; run the same command to "
                                  "continue.",
}


def report_name(name: str) -> str:
    """The report's file name: {name}_REPORT.md."""
    return f"{name}_REPORT.md"


def launch_command(cfg: DictConfig) -> str:
    """The command that continues this run: the Hydra overrides it was started with, minus any `ckpt_path`
    (the default, last, resumes); outside Hydra (a notebook calling train), its name and local root."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        overrides = [o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith("ckpt_path=")]
    else:
        overrides = [f"name={cfg.name}", f"storage.local={cfg.storage.local}"]
    return " ".join(["python train.py", *map(shlex.quote, overrides)])


def experiment_files(local: Layout, also: list[str]) -> list[str]:
    """Paths, relative to the root, of the experiment's checkpoints, logs and exports, plus `also` (files about
    to be written); W&B's own folder is left out."""
    found = set(also)
    for folder in (local.checkpoints, local.logs):
        for parent, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d != "wandb"]
            rel = os.path.relpath(parent, local.root).replace(os.sep, "/")
            found.update(f"{rel}/{f}" for f in files if not f.startswith("."))
    if os.path.isdir(local.exports):
        found.update(local.rel("exports", f) for f in os.listdir(local.exports) if f.startswith(f"{local.name}_"))
    return sorted(found)


def _sessions_table(sessions: list[dict[str, Any]]) -> list[str]:
    lines = ["| # | started (UTC) | episodes | saves | mirrors | budget | outcome |", "|---|---|---|---|---|---|---|"]
    for i, s in enumerate(sessions, 1):
        budget = f"{s['budget_hours']:g} h" if s["budget_hours"] else "none"
        outcome = s["outcome"] or "no stop recorded (process killed?)"
        lines.append(f"| {i} | {s['started']} | {s['from_episode']} → {s['to_episode']} | {s['saves']} | "
                     f"{s['mirrors']} | {budget} | {outcome} |")
    return lines


def _outcome(log: dict[str, Any]) -> list[str]:
    """The outcome in one sentence, then a table: state, episodes, pace, budget, every metric's final value."""
    st = log["outcome"] or {}
    state = st.get("state", "unknown")
    words = OUTCOMES.get(state, "Ended at episode {episode}/{total} ({state}).")
    if state == SessionState.COMPLETED and (st.get("episode") or 0) < (st.get("total") or 0):
        words = "Completed at episode {episode}/{total}: run.early_stop ended it when validation stopped improving."
    lines = [words.format(episode=st.get("episode"), total=st.get("total"), state=state), "", "| | |", "|---|---|",
             f"| state | {state} |", f"| episodes | {st.get('episode')} / {st.get('total')} |"]
    if st.get("episodes_per_min"):
        lines.append(f"| pace (this session) | {st['episodes_per_min']:.2f} episodes/min |")
    if st.get("budget_hours"):
        lines.append(f"| session budget | {st['budget_hours']:g} h, {st.get('budget_used') or 0:.0%} used |")
    return lines + [f"| final {k} | {v:.6g} |" for k, v in log["metrics"]["final"].items()]


def _best_line(best: Optional[dict[str, Any]], local: Layout) -> str:
    if not best:
        return "None yet: no checkpoint has been scored."
    return (f"`{local.rel('checkpoints', best['file'])}`: {best['monitor']} = {best['score']:.6g}; "
            f"also kept as `{local.rel('checkpoints', BEST_FINAL)}`.")


def report_markdown(log: dict[str, Any], local: Layout, remote: Optional[Layout], files: list[str]) -> str:
    """{name}_REPORT.md from the training log: outcome, figures, best checkpoint, sessions, config, files, resume."""
    lines = [f"# {log['name']}: training report", "",
             f"Written {log['written']}, at the end of session {len(log['sessions'])}.", "",
             "## Outcome", "", *_outcome(log), "",
             "## Figures", "", f"![training summary]({SUMMARY_NAME})", "", f"![loss]({LIVE_NAME})", "",
             "## Best checkpoint", "", _best_line(log["checkpoints"]["best"], local), "",
             "## Sessions", "", *_sessions_table(log["sessions"]), ""]
    if remote:
        lines += ["This session's final mirror, which carries this report, follows it and is not counted above.", ""]
    lines += ["## Configuration", "", "```yaml", yaml.safe_dump(log["config"], sort_keys=False).rstrip(), "```", "",
              "## Files", "",
              f"Local root `{local.root}`" + (f", mirrored to `{remote.root}`." if remote else " (no remote)."), "",
              *[f"- `{f}`" for f in files], "",
              "## How to resume", ""]
    if (log["outcome"] or {}).get("state") == SessionState.COMPLETED:
        lines.append("The run is complete. To train further, raise `run.total_episodes` and run the command again:")
    else:
        lines.append("Run the same command again; it continues from the newest valid checkpoint, local or remote:")
    lines += ["", f"    {log['command']}", ""]
    return "\n".join(lines)


class TrainingReport(Callback):
    """Writes training_log.json and {name}_REPORT.md at the end of every session (before the final mirror)."""

    def __init__(self, history: EpisodeHistory, local: Layout, remote: Optional[Layout], config: dict[str, Any],
                 command: str, say: Callable[[str], None] = print) -> None:
        self.history, self.local, self.remote, self.config, self.command, self.say = (
            history, local, remote, config, command, say)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        try:
            self.write(_best(trainer.checkpoint_callback))
        except Exception as exc:  # a report is worth less than the final save and mirror that follow it
            self.say(f"Warning: could not write the training report ({type(exc).__name__}: {exc}).")

    def write(self, best: Optional[dict[str, Any]]) -> None:
        """Build the log from the history, timeline, status and manifest; write the JSON and the report."""
        logs, name = self.local.logs, self.local.name
        log = training_log(name, self.config, self.command, read_status(logs), self.history.rows(),
                           read_events(logs), read_manifest(self.local.checkpoints), best)
        also = [self.local.rel("logs", LOG_NAME), self.local.rel("logs", report_name(name))]
        if best:
            also.append(self.local.rel("checkpoints", BEST_FINAL))
        write_bytes_atomic(os.path.join(logs, LOG_NAME), dumps(log))
        text = report_markdown(log, self.local, self.remote, experiment_files(self.local, also))
        write_bytes_atomic(os.path.join(logs, report_name(name)), text.encode())
        self.say(f"Report: {os.path.join(logs, report_name(name))}")


def _best(checkpoint: Any) -> Optional[dict[str, Any]]:
    """The best checkpoint a ModelCheckpoint knows of (across sessions: its state is restored on resume)."""
    path, score = getattr(checkpoint, "best_model_path", ""), getattr(checkpoint, "best_model_score", None)
    if not path or score is None:
        return None
    return {"file": os.path.basename(path), "monitor": checkpoint.monitor, "score": float(score)}
