"""The write queue: jobs in submission order on one thread; the first failure drops the jobs after it (they may name
its file), is raised once on the submitting thread, and refuses every later job; `close` finishes what was queued."""
import threading

import pytest

from atheria.storage.writes import WriteQueue


def test_jobs_run_in_order_on_one_background_thread_and_drain_waits_for_them():
    queue, done, threads = WriteQueue(), [], set()
    gate = threading.Event()
    queue.submit(gate.wait)  # holds the thread: the jobs below wait behind it

    for i in range(5):
        queue.submit(lambda i=i: (done.append(i), threads.add(threading.current_thread().name)))
    assert done == []  # nothing ran on the submitting thread
    gate.set()
    queue.drain()
    assert done == [0, 1, 2, 3, 4] and threads == {"atheria-writes"}
    queue.close()


def test_a_failed_job_drops_the_jobs_after_it_is_raised_once_and_refuses_later_jobs():
    queue, done = WriteQueue(), []
    gate = threading.Event()
    queue.submit(gate.wait)

    def fail():
        raise OSError(28, "No space left on device")

    queue.submit(lambda: done.append("before"))
    queue.submit(fail)
    queue.submit(lambda: done.append("manifest naming the failed file"))
    gate.set()
    with pytest.raises(OSError, match="No space left"):
        queue.drain()
    assert done == ["before"]
    with pytest.raises(RuntimeError, match="an earlier write failed"):
        queue.submit(lambda: done.append("later"))
    queue.drain()  # raised once: the run's own exception handling may drain again
    queue.close()
    assert done == ["before"]


def test_the_error_surfaces_at_the_next_submit_when_nobody_drains():
    queue = WriteQueue()
    queue.submit(lambda: 1 / 0)
    queue._jobs.join()  # the job has failed; nobody has been told yet
    with pytest.raises(ZeroDivisionError):
        queue.submit(lambda: None)


def test_close_finishes_queued_jobs_and_a_later_job_starts_the_thread_again():
    queue, done = WriteQueue(), []
    queue.submit(lambda: done.append(1))
    queue.close()
    assert done == [1]
    queue.submit(lambda: done.append(2))  # Lightning tears callbacks down after validate(), then fits
    queue.close()
    assert done == [1, 2]
