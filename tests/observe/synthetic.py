"""A synthetic two-session run for the figure, log and report tests: QCA-like rows and the event timeline of a budget
stop then a completing resume."""
from atheria.session.events import EventLog, read_events

NAME = "UNET_8ch_D4"


def qca_rows(n: int = 30) -> list[dict[str, float]]:
    return [{"episode": float(e), "train/loss": 3 - e / n, "train/loss_smooth": 3.1 - e / n,
             "train/survival_rate": e / n} for e in range(1, n + 1)]


def two_sessions(logs_dir: str) -> list[dict]:
    """A budget stop at episode 20 (saves every 10, one mirror), then a resume that completes at 30."""
    log = EventLog(logs_dir)
    log.add("start", 0, budget_hours=10.0)
    for e in (10, 20):
        log.add("save", e, file=f"ep{e:06d}.ckpt")
        log.add("save", e, file="last.ckpt")
    log.add("mirror", 20, remote="/drive")
    log.add("stop", 20, reason="stopped-budget")
    log.add("resume", 20, budget_hours=None)
    log.add("save", 30, file="last.ckpt")
    log.add("stop", 30, reason="completed")
    return read_events(logs_dir)
