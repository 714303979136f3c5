"""The figures as pure functions of rows and events: four decodable panels, the key metric the caller passes (shown
when logged, a note when not), an empty run drawn all the same."""
import math

from matplotlib.image import imread
from PIL import Image

from atheria.families.lm import LM
from atheria.families.qca import QCA
from atheria.observe.figures import live_figure, save_png, summary_figure
from tests.observe.synthetic import NAME, qca_rows, two_sessions


def test_summary_has_four_panels_and_the_png_decodes(tmp_path):
    fig = summary_figure(qca_rows(), two_sessions(str(tmp_path)), NAME, QCA.key_metric)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "survival rate", "checkpoint timeline", "loss distribution"]
    assert len(fig.axes[0].lines) == 2 + 1  # raw, smoothed, and the resume at episode 20
    stops = {c.get_label() for c in fig.axes[2].collections} & {"stopped-budget", "completed"}
    assert stops == {"stopped-budget", "completed"}
    path = tmp_path / "training_summary.png"
    save_png(fig, str(path))
    assert imread(path).shape == (800, 1200, 4)
    assert Image.open(path).text["Description"] == "panels: " + "; ".join(titles)


def test_key_metric_is_the_one_passed_and_a_note_when_it_is_not_logged(tmp_path):
    lm = [{"episode": float(e), "train/loss": 5.0 - e / 100} for e in range(1, 101)]
    for row in lm[49::50]:
        row.update({"val/loss": row["train/loss"], "val/perplexity": math.exp(row["train/loss"])})
    fig = summary_figure(lm, [], "gpt2", LM.key_metric)
    assert fig.axes[1].get_title() == "validation perplexity"
    assert list(fig.axes[1].lines[0].get_xdata()) == [50.0, 100.0]
    bare = summary_figure(qca_rows(5), [], "bare", LM.key_metric)  # survival rate logged, but not asked for
    assert bare.axes[1].get_title() == "key metric" and len(bare.axes) == 4
    assert [t.get_text() for t in bare.axes[1].texts] == ["no validation perplexity logged"]
    assert not bare.axes[1].lines
    empty = summary_figure([], [], "empty", QCA.key_metric)  # a session stopped before its first episode
    assert [t.get_text() for t in empty.axes[1].texts] == ["no survival rate logged"]
    save_png(empty, str(tmp_path / "empty.png"))
    assert imread(tmp_path / "empty.png").ndim == 3
    live = live_figure(qca_rows(5), NAME)
    assert len(live.axes) == 1 and live.get_suptitle() == f"{NAME}: episode 5"


def test_the_loss_panel_shows_the_held_out_loss_beside_a_dashed_line_per_trivial_baseline():
    from atheria.observe.baselines import Baselines

    rows = qca_rows()
    for row in rows[9::10]:
        row["val/loss"] = row["train/loss"] / 2
    baselines = Baselines("val/loss", {"zero law": 0.2322, "uniform law": 0.2293}, 4, "qca/gain_over_trivial")
    ax = summary_figure(rows, [], NAME, QCA.key_metric, baselines).axes[0]
    assert ax.get_title() == "loss, and held-out loss beside trivial baselines"
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert [(line.get_label(), list(line.get_ydata())) for line in dashed] == [
        ("zero law: 0.2322", [0.2322, 0.2322]), ("uniform law: 0.2293", [0.2293, 0.2293])]
    (held,) = [line for line in ax.lines if line.get_label() == "val/loss (held out)"]
    assert list(held.get_xdata()) == [r["episode"] for r in rows[9::10]] and held.get_marker() == "o"
