"""Security end to end: checkpoints never execute code, secrets never reach a file or the console, names never
escape their root."""
import json
import os
import shutil

import pytest
import torch

from atheria.storage.atomic import sha256_file
from tests.helpers import load, run_train

NAME = "MLP_8ch_D4"
WANDB_KEY = "0123456789abcdef0123456789abcdef01234567"
SECRETS = {
    "WANDB_API_KEY": WANDB_KEY,
    "MY_SERVICE_TOKEN": "tok-7f3a9c1e5b2d4086",
    "SOME_SECRET": "sec-b41d7e02c9f35a68",
    "AWS_SECRET_ACCESS_KEY": "aws-wJalrXUtnFEMIK7MDENGbPxRfiCY",
    "HF_TOKEN": "hf_QmVyeVNlY3JldFRva2VuVmFsdWU",
}
PRIVATE_KEY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCfakeKeyMaterial"


def fake_service_account(path):
    """A service-account JSON shaped like Google's, whose private key must never be copied anywhere."""
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "atheria-test", "private_key_id": "pkid-5c0ffee5c0ffee",
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{PRIVATE_KEY}\n-----END PRIVATE KEY-----\n",
        "client_email": "trainer@atheria-test.iam.gserviceaccount.com", "client_id": "1234567890"}))
    return path


def files_under(*roots):
    """Every regular file under the given dirs (hidden ones and W&B's own folders included)."""
    return [os.path.join(d, f) for root in roots for d, _, names in os.walk(root) for f in names]


@pytest.mark.slow
def test_secrets_in_the_environment_never_reach_any_file_or_the_console(tmp_path):
    creds = fake_service_account(tmp_path / "service-account.json")
    env = {**SECRETS, "GOOGLE_APPLICATION_CREDENTIALS": str(creds)}
    root, remote = tmp_path / "out", tmp_path / "drive"
    common = ("model=mlp", "logger=wandb", f"storage.remote={remote}", "run.monitor_every=1")
    first = run_train(root, *common, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_train(root, *common, "run.total_episodes=6", cwd=tmp_path, env=env)  # a resumed session too
    assert second.returncode == 0 and "Resuming from episode 4" in second.stdout, second.stderr[-3000:]
    written = [f for f in files_under(tmp_path) if f != str(creds)]
    assert any("/wandb/" in f for f in written) and any(f.startswith(str(remote)) for f in written)
    values = [*SECRETS.values(), PRIVATE_KEY, "pkid-5c0ffee5c0ffee"]
    for path in written:
        with open(path, "rb") as f:
            data = f.read()
        for value in values:
            assert value.encode() not in data, f"{value[:6]}... found in {path}"
    for proc in (first, second):
        for value in values:
            assert value not in proc.stdout and value not in proc.stderr


SECRET = "hunter2-Zq8wX3"
OVERRIDES = [
    (f"+wandb.api_key={SECRET}", "wandb.api_key=*** is refused"),
    (f"+logger_token={SECRET}", "logger_token=*** is refused"),
    (f"storage.remote=sftp://me:{SECRET}@nas.local/atheria",
     "storage.remote='sftp://me:***@nas.local/atheria' has a password"),
    (f"ckpt_path=https://me:{SECRET}@files.example.org/last.ckpt", "ckpt_path='https://me:***@files.example.org"),
]


@pytest.mark.parametrize("override,says", OVERRIDES, ids=[o[1].split("=")[0] for o in OVERRIDES])
def test_a_secret_on_the_command_line_is_refused_without_echoing_it(tmp_path, override, says):
    proc = run_train(tmp_path / "out", "model=mlp", override, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["nested/dir", "..", "../../etc", "a/../../b", "/abs"])
def test_an_experiment_name_that_could_leave_its_root_is_refused(tmp_path, name):
    proc = run_train(tmp_path / "out", "model=mlp", f"name={name}", f"storage.remote={tmp_path / 'drive'}",
                     cwd=tmp_path)
    assert proc.returncode == 2 and f"name={name!r} is invalid" in proc.stderr, proc.stderr
    assert os.listdir(tmp_path) == []


class _Evil:
    """Unpickling this would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.slow
def test_a_booby_trapped_newest_checkpoint_on_the_remote_is_skipped_never_executed(tmp_path):
    root, remote = tmp_path / "out", tmp_path / "drive"
    assert run_train(root, "model=mlp", f"storage.remote={remote}").returncode == 0
    marker = tmp_path / "pwned"
    ckpts = remote / "checkpoints" / NAME
    evil = ckpts / "ep000099.ckpt"
    torch.save({"global_step": 99, "state_dict": {}, "hyper_parameters": {}, "x": _Evil(marker)}, evil)
    manifest = json.loads((ckpts / "latest.json").read_text())  # whoever can write the remote can forge its manifest
    manifest["files"]["ep000099.ckpt"] = {"size": evil.stat().st_size, "sha256": sha256_file(evil), "step": 99}
    manifest.update(step=99, checkpoint="ep000099.ckpt")
    (ckpts / "latest.json").write_text(json.dumps(manifest))
    shutil.rmtree(root)  # a fresh machine: the remote is all there is
    proc = run_train(root, "model=mlp", f"storage.remote={remote}", "run.total_episodes=6")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skipping checkpoint" in proc.stdout and "ep000099.ckpt" in proc.stdout
    assert "Resuming from episode 4" in proc.stdout
    assert not marker.exists()
    assert load(root / "checkpoints" / NAME / "last.ckpt")["global_step"] == 6
