"""Local file work (checkpoint writes, links, removals, the manifest that names them) done in order on one background
thread, so that the training thread never waits for a disk. Our own because Lightning's AsyncCheckpointIO writes in
the background but removes and links files on the training thread, before the queued writes they depend on, and has
no way to act once a write is done (a manifest must follow the files it names)."""
from __future__ import annotations

import queue
import threading
from typing import Callable, Optional

Job = Callable[[], None]


class WriteQueue:
    """Runs jobs one at a time, each after every job submitted before it. The first job to fail stops the queue for
    good: the jobs after it are dropped (they may name its file), its error is raised on the submitting thread at
    the next `submit` or `drain`, and a later `submit` is refused. The thread starts with the first job after a
    `close`."""

    def __init__(self, name: str = "atheria-writes") -> None:
        self._jobs: queue.Queue[Optional[Job]] = queue.Queue()
        self._error: Optional[BaseException] = None  # a failure not yet raised on the submitting thread
        self._failed = False
        self._name = name
        self._thread: Optional[threading.Thread] = None

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if not self._failed:
                    job()
            except BaseException as exc:  # raised again on the training thread, where it ends the run
                self._error, self._failed = exc, True
            finally:
                self._jobs.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def check(self) -> None:
        """Raise the error of a job that failed (once), then refuse: nothing more will run."""
        self._raise()
        if self._failed:
            raise RuntimeError("an earlier write failed: nothing more is written")

    def submit(self, job: Job) -> None:
        """Queue `job` after every job before it; first raise the error of one that failed."""
        self.check()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name=self._name)
            self._thread.start()
        self._jobs.put(job)

    def drain(self) -> None:
        """Wait until every job submitted so far is done; raise the error of one that failed."""
        self._jobs.join()
        self._raise()

    def close(self) -> None:
        """Finish the queued jobs and stop the thread; raise the error of one that failed."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
        self._raise()
