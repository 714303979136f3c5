"""Shared pytest fixtures."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Iterator

import fsspec.config
import pytest

GCS_BUCKET = "atheria-test"
# What gcsfs needs to talk to the emulator, also inherited by subprocesses: the endpoint; anonymous access
# (no credential probing of the metadata server); and plain GCSFileSystem, since the default "extended"
# one asks the gRPC storage-control API for the bucket type on every call (the emulator has none).
GCS_ENV = {"NO_GCE_CHECK": "true", "FSSPEC_GS_TOKEN": "anon", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


def _free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0, log: str = "") -> None:
    """Block until the server accepts connections; fail if it exits (with the end of its output `log`, where it
    wrote one) or never listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = ""
            if log:
                with open(log, errors="replace") as f:
                    said = f.read()[-2000:]
            raise RuntimeError(f"gcp-storage-emulator exited with code {proc.returncode}: {said}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gcp-storage-emulator did not listen on port {port} within {timeout:.0f} s")


class GcsEndpoint:
    """A real gcp-storage-emulator on a loopback port that keeps its objects on disk in `folder`, so a test can stop
    it (an endpoint gone: connections refused) and start it again with the bucket as it was.

    It is stopped with SIGINT, never SIGTERM: it rewrites its index of objects (`.meta`) in place on every upload,
    and a SIGTERM that lands mid-rewrite leaves a cut index it cannot start from again (JSONDecodeError, exit 1).
    On SIGINT it finishes the request in hand, then exits. The outage its client sees is the same: refused."""

    def __init__(self, folder: str) -> None:
        self.exe = shutil.which("gcp-storage-emulator")
        if self.exe is None:
            pytest.skip("gcp-storage-emulator is not installed (pip install gcp-storage-emulator)")
        self.folder, self.port = folder, _free_port()
        self.env = {**GCS_ENV, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.port}"}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start serving (and wait until it listens)."""
        log = os.path.join(self.folder, "emulator.log")
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([self.exe, "start", "--host", "127.0.0.1", "--port", str(self.port),
                                          "--default-bucket", GCS_BUCKET, "-q"], cwd=self.folder,
                                         stdout=out, stderr=subprocess.STDOUT)
        _wait_for_port(self.port, self.proc, log=log)

    def stop(self) -> None:
        """Stop serving; the objects stay in the folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def gcs_endpoint(tmp_path) -> Iterator[GcsEndpoint]:
    """A stoppable GCS endpoint of this test's own, started."""
    folder = tmp_path / "gcs-endpoint"
    folder.mkdir()
    endpoint = GcsEndpoint(str(folder))
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture(scope="session")
def gcs_root() -> Iterator[str]:
    """A 'gs://bucket/prefix' URL served by a real in-memory gcp-storage-emulator on loopback."""
    exe = shutil.which("gcp-storage-emulator")
    if exe is None:
        pytest.skip("gcp-storage-emulator is not installed (pip install gcp-storage-emulator)")
    port = _free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory",
                             "--default-bucket", GCS_BUCKET, "-q"], stdout=log, stderr=subprocess.STDOUT)
    env = {**GCS_ENV, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
    saved = {key: os.environ.get(key) for key in env}
    saved_token = fsspec.config.conf.get("gs", {}).get("token")
    try:
        _wait_for_port(port, proc)
        os.environ.update(env)
        fsspec.config.conf.setdefault("gs", {})["token"] = "anon"  # fsspec read FSSPEC_GS_TOKEN at import
        import gcsfs.core  # in case gcsfs was imported (extended class chosen) before the env was set
        fsspec.register_implementation("gs", gcsfs.core.GCSFileSystem, clobber=True)
        yield f"gs://{GCS_BUCKET}/runs"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if saved_token is None:
            fsspec.config.conf.get("gs", {}).pop("token", None)
        else:
            fsspec.config.conf["gs"]["token"] = saved_token


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs (root and mount permission needed), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root and mount permission)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def budget_ends_at(monkeypatch):
    """{"step": N}: the session's budget runs out at episode N (the decision forced; the stop that follows is the
    real one, its validation and final save included)."""
    at: dict = {"step": None}
    from atheria.session.guard import SessionGuard
    from atheria.session.outcome import SessionState

    reason = SessionGuard.reason

    def forced(self, step, total):
        why = reason(self, step, total)
        return SessionState.STOPPED_BUDGET if why is None and at["step"] is not None and step >= at["step"] else why

    monkeypatch.setattr(SessionGuard, "reason", forced)
    return at
