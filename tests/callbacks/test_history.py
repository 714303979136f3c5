"""metrics.csv kept whole: trimmed of episodes a resume runs again, rows written ahead of Lightning without doubles."""
import csv
import math

from atheria.loggers import HistoryCSVLogger
from atheria.observe.history import read_history, trim_history

KILLED = ("episode,epoch,resources/ram_used_gb,step,train/loss,val/perplexity\n"
          "0.0,0,,,,9.0\n"         # the baseline validation, before episode 1
          "1.0,,1.5,0,,\n"         # the resource monitor's row of episode 1
          "1.0,0,,0,3.0,\n"
          "2.0,0,,1,2.0,\n"
          ",0,,2,,7.5\n"           # a validation row that names its episode by step: episode 3
          "3.0,0,,2,1.0,\n"
          ",,,,,\n"                # a row that names no episode
          "4.0,0,,3,0.")           # cut off by the kill


def rows(folder):
    with open(folder / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_trim_history_drops_the_episodes_after_the_resumed_checkpoint_atomically(tmp_path):
    (tmp_path / "metrics.csv").write_text(KILLED)
    assert trim_history(str(tmp_path), 2) == 3
    kept = rows(tmp_path)
    assert [(r["episode"], r["step"]) for r in kept] == [("0.0", ""), ("1.0", "0"), ("1.0", "0"), ("2.0", "1"),
                                                         ("", "")]
    assert list(kept[0]) == KILLED.splitlines()[0].split(",")  # the header, as it was
    assert sorted(read_history(str(tmp_path))) == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # no temp file left beside it
    assert trim_history(str(tmp_path), 2) == 0 and rows(tmp_path) == kept  # nothing past episode 2: untouched
    assert trim_history(str(tmp_path / "none"), 2) == 0  # a run that never wrote metrics


def test_a_row_written_ahead_is_not_written_again_by_lightning(tmp_path):
    logger = HistoryCSVLogger(save_dir=tmp_path, name="exp", version="")
    logger.log_metrics({"episode": 1.0, "resources/ram_used_gb": 1.5}, step=0)  # buffered, as the monitor's row is
    logger.log_ahead({"episode": 1.0, "train/loss": math.nan, "epoch": 0}, step=0)
    assert [r["train/loss"] for r in rows(tmp_path / "exp")] == ["", "nan"]  # on disk, with the buffered row
    logger.log_metrics({"episode": 1.0, "train/loss": math.nan, "epoch": 0}, step=0)  # Lightning's own call
    logger.log_metrics({"episode": 1.0, "val/loss": 2.0, "epoch": 0}, step=0)  # another row of the same step
    logger.sync()
    logger.save()
    assert [(r["step"], r["train/loss"], r["val/loss"]) for r in rows(tmp_path / "exp")] == [
        ("0", "", ""), ("0", "nan", ""), ("0", "", "2.0")]
