"""Where metrics go: the configured Lightning loggers, made to continue an experiment across sessions, with metrics.csv
kept whole across kills (a training step's row written before its checkpoint)."""
from __future__ import annotations

import contextlib
import csv
import os
import re
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig
from typing_extensions import override

from atheria.errors import ConfigError
from atheria.observe.history import write_csv_atomic
from atheria.storage.atomic import replace_text
from atheria.sweeps import sweep_id

if TYPE_CHECKING:
    from atheria.resume import Resume


class _AppendingWriter(ExperimentWriter):
    """Lightning's writer deletes an existing metrics.csv on start; a resumed experiment must keep its history,
    with the columns it already has (a session may log fewer metrics than the one before)."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))

    def _check_log_dir_exists(self) -> None:
        return None

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        # Lightning truncates metrics.csv and writes it again: a kill in between would lose the whole history.
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            rows = list(csv.DictReader(f))
        write_csv_atomic(self.metrics_file_path, fieldnames, rows)


class HistoryCSVLogger(CSVLogger):
    """CSVLogger that appends to the experiment's metrics.csv instead of replacing it, and whose rows a background
    thread may write (`sync`, before a checkpoint) while the training thread logs more."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.RLock()

    @property
    @override
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    @override
    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: Optional[int] = None) -> None:
        with self._lock:
            super().log_metrics(metrics, step)

    @override
    @rank_zero_only
    def save(self) -> None:
        with self._lock:
            super().save()

    @rank_zero_only
    def sync(self) -> None:
        """Write the rows logged so far to metrics.csv and fsync it, so that they survive a crash of the machine."""
        with self._lock:
            self.save()
            path = self.experiment.metrics_file_path
            if os.path.isfile(path):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


def _history_loggers(trainer: "pl.Trainer") -> list[HistoryCSVLogger]:
    """The trainer's loggers that keep metrics.csv, on rank zero (the rank that writes it); none elsewhere."""
    return [lg for lg in trainer.loggers if isinstance(lg, HistoryCSVLogger)] if trainer.is_global_zero else []


def log_rows(trainer: "pl.Trainer", rows: Sequence[tuple[int, Mapping[str, float]]]) -> None:
    """Hand each (episode, metrics) row to every logger, under the step Lightning logs that episode's training at
    (episode - 1), with its `episode` column. metrics.csv gets them at the next `sync_rows` (before a checkpoint),
    every 100 rows, and at the end."""
    if not trainer.is_global_zero:
        return
    for logger in trainer.loggers:
        for episode, metrics in rows:
            logger.log_metrics({"episode": float(episode), **metrics}, step=episode - 1)


def log_picture(loggers: Sequence[Any], key: str, path: str, episode: int) -> None:
    """The picture at `path` to every logger that shows pictures, as `key` at `episode`'s step (episode - 1, where
    its metrics are): a PNG as a W&B Image and a TensorBoard image; a GIF as a W&B Video and, in TensorBoard's image
    panel, animated (what its add_video writes, without the moviepy it needs to encode one). The CSV keeps none."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            if isinstance(logger, AtheriaWandbLogger) and logger.replayed(episode - 1):
                continue
            import wandb

            # With its episode, W&B's x-axis (describe_run): Lightning's log_image would leave W&B to place it at
            # the newest episode sent. Not through log_metrics: a picture must not move the replay marker past
            # episodes whose rows are still on their way to W&B.
            media = wandb.Video(path, format="gif") if path.endswith(".gif") else wandb.Image(path)
            logger.experiment.log({key: media, "episode": float(episode), "trainer/global_step": episode - 1})
        elif isinstance(logger, TensorBoardLogger):
            from PIL import Image
            from tensorboard.compat.proto.summary_pb2 import Summary

            with Image.open(path) as picture, open(path, "rb") as f:  # the file's own bytes: no second encoding
                image = Summary.Image(height=picture.height, width=picture.width,
                                      colorspace=len(picture.getbands()), encoded_image_string=f.read())
            logger.experiment.file_writer.add_summary(Summary(value=[Summary.Value(tag=key, image=image)]),
                                                      global_step=episode - 1)


def hand_over(loggers: Sequence[Any], drawn: list[tuple[str, str, int]], say: Callable[[str], None]) -> None:
    """Send each (key, path, episode) picture drawn in the background, and empty `drawn`: on the training thread,
    where the loggers are used. A failure is a warning: a picture in a dashboard is worth less than the run."""
    pictures = drawn[:]
    del drawn[:len(pictures)]
    for key, path, episode in pictures:
        try:
            log_picture(loggers, key, path, episode)
        except Exception as exc:
            say(f"Warning: could not send {key} of episode {episode} to the loggers ({type(exc).__name__}: {exc}).")


def sync_rows(trainer: "pl.Trainer") -> None:
    """Write the rows logged so far to metrics.csv and make them durable (before a checkpoint is saved)."""
    for logger in _history_loggers(trainer):
        logger.sync()


def check_wandb_login(loggers: Mapping[str, Any]) -> None:
    """Refuse, before any work, a W&B logger (`logger.wandb`) that wandb would stop at its login prompt: no API key
    (WANDB_API_KEY, `wandb login`'s netrc) while W&B is neither offline nor disabled. wandb's own credential lookup;
    no network."""
    if "wandb" not in loggers or loggers["wandb"].get("offline"):
        return
    from wandb.errors import AuthenticationError
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    settings = wandb_setup.singleton().settings  # WANDB_MODE and `wandb offline`'s settings file
    if settings.mode in ("offline", "dryrun", "disabled"):
        return
    accepted = ("accepted: log in first (`wandb login`, or set WANDB_API_KEY), run offline with WANDB_MODE=offline "
                "(upload later with `wandb sync`), or logger=csv")
    try:
        found = wbauth.authenticate_session(host=settings.base_url, source="atheria", prompt=False,
                                            update_session=False)
    except AuthenticationError as exc:
        raise ConfigError(f"logger=wandb: {' '.join(str(exc).split()).rstrip('.')}; {accepted}") from None
    if found is None:
        raise ConfigError(f"logger=wandb but W&B has no API key on this machine; {accepted}")


WANDB_ID, WANDB_MARKER = "wandb_id.txt", "wandb_episode.txt"


def forget_wandb_run(logs_dir: str) -> None:
    """An experiment started over (ckpt_path=null) gets a new W&B run: its old run keeps the old attempt's points,
    and the replay marker no longer holds back the new ones."""
    for name in (WANDB_ID, WANDB_MARKER):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(logs_dir, name))


def build_loggers(cfg: DictConfig, logs_dir: str, resume: Optional[Resume] = None) -> list[Any]:
    """The loggers of `cfg.logger`, in its order (the CSV history first); W&B (`logger.wandb`) gets the experiment's
    stored run id, so one experiment is one W&B run, and TensorBoard one run directory. The episodes a session replays
    (run before a kill, after the checkpoint it resumes from, or before the first save) do not leave a second point:
    TensorBoard purges its earlier points from the resumed episode on (SummaryWriter's purge_step), and W&B is given
    only the episodes past the newest it got (AtheriaWandbLogger)."""
    from hydra.utils import instantiate

    loggers = []
    for key, item in cfg.logger.items():
        extra = {}
        if key == "wandb":
            id_file = Path(logs_dir) / WANDB_ID
            if not id_file.exists():
                replace_text(str(id_file), secrets.token_hex(8))
            extra = {"id": id_file.read_text().strip(), "resume": "allow"}
            if sweep_id():
                extra["group"] = sweep_id()  # the jobs of one sweep, grouped in W&B
            extra["tags"] = run_tags(cfg)
            extra["marker"] = str(Path(logs_dir) / WANDB_MARKER)
            extra["logged_until"] = resume.logged if resume is not None else 0
        elif key == "tensorboard":  # the step of the first replayed episode (episode - 1); 0 from the start
            extra["purge_step"] = resume.episode if resume is not None else 0
        loggers.append(instantiate(item, **extra))
    return loggers


class AtheriaWandbLogger(WandbLogger):
    """Lightning's WandbLogger, given on a resume the newest episode W&B may already hold (`logged_until`), whose
    points it drops while the session replays them: W&B cannot take back a point, and Lightning's logger would add a
    second one. That episode is the newest of metrics.csv's before the session, the `marker` file's (written before
    each newer episode is handed to W&B, so that a kill can cost a point W&B never got, never a second one) and the
    summary's `episode` W&B restores on an online resume (describe_run). With `log_checkpoints`, it uploads
    best-final.ckpt as a model artifact at the end of every session (upload_best)."""

    def __init__(self, *args: Any, logged_until: Optional[int] = None, marker: Optional[str] = None,
                 log_checkpoints: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log_checkpoints, self.marker = log_checkpoints, marker
        self._marked = read_marker(marker) if logged_until is not None else 0  # a fresh start: from episode 1
        self.logged_until = None if logged_until is None else max(logged_until, self._marked)

    def replayed(self, step: Optional[int]) -> bool:
        """Whether episode step + 1 is replayed: W&B has its point from before the kill."""
        return self.logged_until is not None and step is not None and step < self.logged_until

    @override
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        if self.replayed(step):
            return
        if self.marker is not None and step is not None and step + 1 > self._marked:
            self._marked = step + 1
            replace_text(self.marker, str(self._marked))  # a cut-short marker would let every point through again
        super().log_metrics(metrics, step)


def read_marker(path: Optional[str]) -> int:
    """The episode a W&B marker file names; 0 without one, or for one that holds no number."""
    try:
        with open(path or "") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 0


@rank_zero_only
def finish_runs(loggers: Sequence[Any], failed: bool) -> None:
    """End the session's W&B run (failed: marked so), as W&B asks at a session's end: a later session in this
    process (a sweep's next job, a test) would otherwise log into it, which Lightning's logger reuses."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish(exit_code=1 if failed else 0)


def upload_best(loggers: Sequence[Any], path: str, episode: int) -> None:
    """best-final.ckpt (at `path`, of `episode`) to every W&B logger asked to log checkpoints, as a model artifact
    `{name}-best` aliased best, latest and ep{episode}: W&B uploads it in its own process, and keeps it for `wandb
    sync` when offline."""
    asked = [logger for logger in loggers if isinstance(logger, AtheriaWandbLogger) and logger.log_checkpoints]
    if not asked:
        return  # without W&B's logger, wandb need not be installed
    import wandb

    for logger in asked:
        name = re.sub(r"[^\w.-]", "-", f"{logger.experiment.name}-best")  # the experiment's (logger.name: project)
        artifact = wandb.Artifact(name, type="model", metadata={"episode": episode})
        artifact.add_file(path, name=os.path.basename(path))
        logger.experiment.log_artifact(artifact, aliases=["best", "latest", f"ep{episode}"])


def run_tags(cfg: DictConfig) -> list[str]:
    """What a dashboard filters runs by: the architecture, the preset and the platform."""
    return [str(cfg.model.arch), f"preset:{cfg.run.preset}", f"platform:{cfg.platform.name}"]


@rank_zero_only
def describe_run(loggers: Sequence[Any], config: Mapping[str, Any]) -> None:
    """The composed config (secrets masked) as each dashboard's config (W&B) or hparams (TensorBoard); in W&B,
    `episode` as the x-axis of every metric and the smoothed and held-out losses' minimum in the run's summary."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            if isinstance(logger, AtheriaWandbLogger) and logger.logged_until is not None:
                logger.logged_until = max(logger.logged_until, int(run.summary.get("episode") or 0))
            run.define_metric("episode")
            run.define_metric("*", step_metric="episode", step_sync=True)
            for key in ("train/loss_smooth", "val/loss"):
                run.define_metric(key, step_metric="episode", summary="min,last")
        if isinstance(logger, TensorBoardLogger):
            # Lightning writes TensorBoard's hparams panel only beside a metric value it logs (a placeholder -1 at
            # step 0 by default, a false point): this writes the panel alone, tied to the losses logged later.
            from torch.utils.tensorboard.summary import hparams

            for summary in hparams(_flat(config), {"train/loss_smooth": 0.0, "val/loss": 0.0}):
                logger.experiment.file_writer.add_summary(summary)
        if isinstance(logger, (WandbLogger, TensorBoardLogger)):
            logger.log_hyperparams(dict(config))


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as {"a/b": value}, each value a number, a bool or a string (what TensorBoard's hparams take)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return flat


@rank_zero_only
def log_summary(loggers: Sequence[Any], summary: Mapping[str, Any]) -> None:
    """A session's outcome and key figures: W&B's run summary; TensorBoard's text panel (`summary`)."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(dict(summary))
        elif isinstance(logger, TensorBoardLogger):
            table = "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in summary.items())])
            logger.experiment.add_text("summary", table, global_step=max(0, int(summary.get("episode", 1)) - 1))
