"""stop_request.json: the file `atheria stop` writes, read back from any dir, and the poller that never blocks on a
failing remote and removes a request left from before the session."""
import json
import time

import pytest

from atheria.session.stop_request import STOP_NAME, StopRequests, clear_stop_request, read_stop_request, request_stop
from tests.helpers import wait_for


def test_a_request_is_written_whole_and_read_back(tmp_path):
    written = request_stop(str(tmp_path), by="laptop")
    assert json.loads((tmp_path / STOP_NAME).read_text()) == written
    assert written["by"] == "laptop" and written["requested"].endswith("+00:00")
    assert read_stop_request(str(tmp_path)) == written
    assert not [p.name for p in tmp_path.iterdir() if p.name != STOP_NAME]  # no temp file left


def test_no_request_reads_as_none_and_clearing_twice_is_fine(tmp_path):
    assert read_stop_request(str(tmp_path)) is None
    request_stop(str(tmp_path))
    clear_stop_request(str(tmp_path))
    assert not (tmp_path / STOP_NAME).exists() and read_stop_request(str(tmp_path)) is None
    clear_stop_request(str(tmp_path))


@pytest.mark.parametrize("damaged", [b"{cut off", b"[1, 2]", b""])
def test_a_damaged_request_still_counts_as_one_by_unknown(tmp_path, damaged):
    (tmp_path / STOP_NAME).write_bytes(damaged)
    assert read_stop_request(str(tmp_path)) == {"requested": None, "by": "unknown"}


@pytest.mark.parametrize("kind", ["memory", "gcs"])
def test_a_request_is_seen_in_either_dir_and_removed_from_both(tmp_path, request, kind):
    base = f"memory://stop-{tmp_path.name}" if kind == "memory" else request.getfixturevalue("gcs_root")
    local, remote = str(tmp_path / "logs"), f"{base}/stop-{tmp_path.name}/logs"
    said = []
    # Polled every second: both requests below are written well inside one interval, so no sweep falls between them
    # (at 0.05 s one could, and then found the first, cleared both, and the second was written after).
    requests = StopRequests([local, "nosuch://unreachable/logs", remote], every_s=1.0, say=said.append)
    request_stop(local, by="earlier")  # left from before: the first sweep removes it and says so when it is done
    requests.start()
    wait_for(lambda: said, timeout=10)
    assert requests.request is None
    request_stop(local, by="laptop")
    request_stop(remote, by="laptop")
    wait_for(lambda: requests.request is not None, timeout=5)
    requests.close()
    assert requests.request["by"] == "laptop" and requests.request["requested"]
    assert read_stop_request(local) is None and read_stop_request(remote) is None
    assert len(said) == 1 and "earlier" in said[0] and "left from before" in said[0]


def test_a_request_left_from_before_the_session_is_removed_not_honoured(tmp_path):
    logs = str(tmp_path / "logs")
    request_stop(logs, by="yesterday")
    said = []
    requests = StopRequests([logs], every_s=0.05, say=said.append)
    requests.start()
    wait_for(lambda: read_stop_request(logs) is None, timeout=5)
    time.sleep(0.2)
    requests.close()
    assert requests.request is None
    assert len(said) == 1 and "left from before this session" in said[0] and "yesterday" in said[0]


def test_polling_stops_at_close_and_a_later_request_is_not_taken(tmp_path):
    requests = StopRequests([str(tmp_path)], every_s=0.05, say=lambda line: None)
    requests.start()
    time.sleep(0.1)
    requests.close()
    assert requests._thread is not None and not requests._thread.is_alive()
    request_stop(str(tmp_path), by="late")
    time.sleep(0.2)
    assert requests.request is None and read_stop_request(str(tmp_path))["by"] == "late"
