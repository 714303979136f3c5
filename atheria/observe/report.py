"""The end-of-session report's text: {name}_REPORT.md in Markdown from the training log, the experiment's files and
the command that continues the run."""
from __future__ import annotations

import os
from typing import Any, Optional

import yaml

from atheria.observe.figures import LIVE_NAME, SUMMARY_NAME
from atheria.session.outcome import SessionState
from atheria.session.shelf import BEST_FINAL
from atheria.storage.layout import Layout

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


def _baselines_section(record: Optional[dict[str, Any]]) -> list[str]:
    """The trivial answers' held-out scores and the model's, and what the gain says."""
    if not record:
        return []
    lines = ["## Beside trivial baselines", "",
             f"On {record['episodes']} held-out episodes (never trained on), `{record['metric']}`, lower is better:",
             "", "| | held-out loss |", "|---|---|"]
    lines += [f"| {label} | {value:.6g} |" for label, value in record["scores"].items()]
    if record["model_best"] is None:
        return lines + ["", "No held-out evaluation of the model yet (every `run.eval_every` episodes).", ""]
    lines += [f"| this run, best evaluation | {record['model_best']:.6g} |",
              f"| this run, last evaluation | {record['model_last']:.6g} |", "",
              f"`{record['gain_metric']}` = (best trivial - model) / |best trivial|: best "
              f"{record['model_best_gain']:.3f}, last {record['model_last_gain']:.3f} (0: no better than "
              f"{record['best']}; below 0: worse).", ""]
    return lines


def report_markdown(log: dict[str, Any], local: Layout, remote: Optional[Layout], files: list[str]) -> str:
    """{name}_REPORT.md from the training log: outcome, figures, best checkpoint, sessions, config, files, resume."""
    lines = [f"# {log['name']}: training report", "",
             f"Written {log['written']}, at the end of session {len(log['sessions'])}.", "",
             "## Outcome", "", *_outcome(log), "",
             "## Figures", "", f"![training summary]({SUMMARY_NAME})", "", f"![loss]({LIVE_NAME})", "",
             *_baselines_section(log.get("baselines")),
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
