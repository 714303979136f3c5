"""How a session ends: every SessionState has its closing line, in episodes for training and steps for the agent."""
import pytest

from atheria.session.outcome import Outcome, SessionState, final_words

RESUME = "Run the same command to continue."
WORDS = {
    SessionState.RUNNING: ("Stopped at episode 3/10.", "Stopped at step 3/10."),
    SessionState.COMPLETED: ("Completed 3/10 episodes.", "Completed 3/10 steps."),
    SessionState.EARLY: ("Completed at episode 3/10: the validation metric of run.early_stop stopped improving.",
                         "Completed at step 3/10: the validation metric of run.early_stop stopped improving."),
    SessionState.STOPPED_BUDGET: (
        "Stopped at episode 3/10 to stay within the session budget. Run the same command in the next session to "
        "continue.",
        "Stopped at step 3/10 to stay within the session budget. Run the same command in the next session to "
        "continue."),
    SessionState.STOPPED_SIGNAL: (f"Stopped at episode 3/10 on SIGTERM. {RESUME}",
                                  f"Stopped at step 3/10 on SIGTERM. {RESUME}"),
    SessionState.STOPPED_REQUEST: (f"Stopped at episode 3/10 on request (atheria stop). {RESUME}",
                                   f"Stopped at step 3/10 on request (atheria stop). {RESUME}"),
    SessionState.FAILED: ("Stopped at episode 3/10.", "Stopped at step 3/10."),
}


def test_every_state_has_its_words():
    assert set(WORDS) == set(SessionState)


@pytest.mark.parametrize("state", list(SessionState), ids=str)
def test_final_words_of_every_state_in_episodes_and_steps(state):
    episode, step = WORDS[state]
    assert final_words(state, 3, 10, signal="SIGTERM") == episode
    assert final_words(state.value, 3, 10, unit="step", signal="SIGTERM") == step


def test_a_state_is_its_plain_string():
    assert SessionState("stopped-budget") is SessionState.STOPPED_BUDGET
    assert SessionState.COMPLETED == "completed" and str(SessionState.STOPPED_SIGNAL) == "stopped-signal"
    assert f"{SessionState.FAILED}" == "failed"


def test_an_unknown_state_is_an_error_not_a_line():
    with pytest.raises(ValueError):
        final_words("stopped-somehow", 1, 2)


def test_an_outcome_is_a_fixed_code_and_objective():
    outcome = Outcome(0, 0.5)
    assert (outcome.code, outcome.best_loss, Outcome(2).best_loss) == (0, 0.5, None)
    with pytest.raises(AttributeError):
        outcome.code = 1  # type: ignore[misc]
