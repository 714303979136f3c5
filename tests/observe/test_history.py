"""metrics.csv kept whole: trimmed of the episodes a resume runs again."""
import csv

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


def test_a_run_starting_at_episode_1_again_keeps_only_the_rows_that_name_no_episode(tmp_path):
    (tmp_path / "metrics.csv").write_text(KILLED)
    assert trim_history(str(tmp_path), -1) == 7  # the baseline validation's episode-0 row too: it runs again
    assert [(r["episode"], r["step"]) for r in rows(tmp_path)] == [("", "")]
