"""The session's debug log: held in memory until the session is accepted, so a refused run leaves no folder."""
import logging

from atheria.debug_log import close_debug_log, keep_debug_log, open_debug_log


def test_records_are_held_until_the_session_is_kept_then_written_in_order(tmp_path):
    logs = tmp_path / "logs" / "exp"
    path = open_debug_log(str(logs))
    try:
        logging.getLogger("gcsfs").error("retry 1 failed")
        logging.getLogger("atheria.storage").debug("probe detail")
        assert not (tmp_path / "logs").exists()  # a refusal now would leave nothing behind
        keep_debug_log()
        logging.getLogger("gcsfs").info("after keep")
    finally:
        close_debug_log()
    lines = open(path).read().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["retry 1 failed", "probe detail", "after keep"]


def test_a_session_never_kept_writes_nothing(tmp_path):
    open_debug_log(str(tmp_path / "logs" / "exp"))
    logging.getLogger("gcsfs").error("refused: not writable")
    close_debug_log()
    assert list(tmp_path.iterdir()) == []
