"""What a run prints, piece by piece: the progress bar's labelled times and metrics, and the log lines and warnings
the runner drops (Lightning's device and stop lines, transformers' notices)."""
import logging
import warnings

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from rich.progress import Progress

from atheria.callbacks.progress import ElapsedRemainingColumn, EpisodeProgressBar
from atheria.tasks.train import _DropNoise, silence_known_warnings


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("lightning.pytorch", logging.INFO, __file__, 1, message, None, None)


def test_time_column_says_elapsed_and_left_then_only_elapsed():
    now = [0.0]
    progress = Progress(get_time=lambda: now[0])
    task_id = progress.add_task("Episodes", total=100)
    for step in range(1, 11):  # 10 episodes in 60 s: 90 left at 6 s each
        now[0] = 6.0 * step
        progress.update(task_id, completed=step)
    column = ElapsedRemainingColumn()
    assert column.render(progress.tasks[0]).plain == "0:01:00 elapsed · 0:09:00 left"
    progress.update(task_id, completed=100)
    assert column.render(progress.tasks[0]).plain == "0:01:00 elapsed"


def test_bar_metrics_leave_out_the_loggers_version(tmp_path):
    trainer = Trainer(logger=TensorBoardLogger(tmp_path, name="", version="tensorboard"), accelerator="cpu",
                      enable_checkpointing=False, enable_model_summary=False)
    assert EpisodeProgressBar().get_metrics(trainer, None) == {}  # Lightning's own adds v_num: 'oard'


def test_lightning_device_restore_and_stop_lines_are_dropped_others_kept():
    drop = _DropNoise()
    for line in ("GPU available: True (cuda), used: True", "TPU available: False, using: 0 TPU cores",
                 "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]", "`Trainer.fit` stopped: `max_steps=100` reached.",
                 "Restoring states from the checkpoint path at /x/last.ckpt", "💡 Tip: For seamless cloud uploads",
                 "`loss_type=None` was set in the config but it is unrecognized. Using the default loss"):
        assert not drop.filter(_record(line)), line
    assert drop.filter(_record("Epoch 3: validation loss improved"))


def test_gpt2_lora_build_warns_nothing_and_the_loss_type_notice_is_dropped():
    from atheria.lm.model import build_gpt2_lora

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_warnings()
        build_gpt2_lora(None, lora_r=4, n_embd=32)
    assert [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))] == []
    notice = _record("`loss_type=None` was set in the config but it is unrecognized.")
    assert not logging.getLogger("transformers.modeling_utils").filter(notice)
