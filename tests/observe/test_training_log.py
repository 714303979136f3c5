"""The training log's sessions, rebuilt from the event timeline alone."""
from atheria.observe.training_log import sessions
from tests.observe.synthetic import two_sessions


def test_sessions_come_from_the_timeline(tmp_path):
    found = sessions(two_sessions(str(tmp_path)) + [{"t": "x", "event": "resume", "episode": 30}])
    assert [(s["from_episode"], s["to_episode"], s["saves"], s["mirrors"], s["outcome"]) for s in found] == [
        (0, 20, 2, 1, "stopped-budget"), (20, 30, 1, 0, "completed"), (30, 30, 0, 0, None)]
    assert found[0]["budget_hours"] == 10.0 and found[2]["ended"] is None
