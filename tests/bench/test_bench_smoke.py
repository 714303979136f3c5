"""The benchmarks run and report in the agreed format. Timings are never asserted: benchmarks are not tests."""
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

RESULT = re.compile(r"^RESULT (\S+) (-?[0-9.]+(?:e[-+]?[0-9]+)?|nan|inf) (\S+)$")
EXPECTED = {
    "overhead": {f"overhead{variant}.time_ratio" for variant in ("", ".short", ".tiny")},
    "mirror": {"mirror.throughput_ratio"},
    "remote_lag": {"mirror.remote_lag_episodes.median", "mirror.remote_lag_episodes.max",
                   "mirror.remote_lag_episodes.max_at_publish", "mirror.episodes_per_upload",
                   "mirror.episodes_per_upload.max"},
    "budget": {"budget.median_used", "budget.overruns"},
    "memory": {f"memory.{mode}.steps{steps}" for mode in ("full", "checkpoint", "tbptt10") for steps in (10, 50, 100)}
    | {"memory.checkpoint_over_full.steps100"},
    "throughput": {f"throughput.{arch}.g{grid}.{mode}" for arch in ("unet", "snn_unet", "mlp", "deep_qca")
                   for grid in (32, 64, 128) for mode in ("forward", "train")}
    | {"throughput.unet.g32.train.compile_speedup", "throughput.unet.g32.forward.compile_speedup"},
    "startup": {"startup.train_help", "startup.status_help", "startup.import_lightning",
                "startup.train_help.imports_torch", "startup.status_help.imports_torch"},
    "science": {f"science.qca.{arch}.gain_over_trivial" for arch in ("unet", "snn_unet", "mlp", "deep_qca")}
    | {f"science.lm.perplexity.{row}" for row in ("untrained", "phi", "no_phi", "unigram")}
    | {f"science.lm.phi.{row}" for row in ("untrained", "phi", "no_phi")}
    | {"science.lm.noise_phi.uncorrected", "science.lm.noise_phi.corrected"},
}


def run_bench(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """`python bench/run.py ARGS` from the repository, output captured."""
    return subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), *args], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout)


def final_results(stdout: str) -> dict[str, str]:
    """The block of RESULT lines that ends the output, by name; every line of it must have the agreed format."""
    lines = stdout.rstrip("\n").splitlines()
    block = []
    while lines and lines[-1].startswith("RESULT "):
        block.insert(0, lines.pop())
    names = {}
    for line in block:
        match = RESULT.match(line)
        assert match, f"not `RESULT <name> <value> <unit>`: {line!r}"
        names[match.group(1)] = match.group(3)
    assert len(names) == len(block), "a result name appears twice"
    return names


def test_one_quick_benchmark_through_the_script_form():
    proc = run_bench("--quick", "budget", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.startswith("machine: ")
    assert set(final_results(proc.stdout)) == {"budget.median_used", "budget.p05_used", "budget.overruns"}


def test_an_unknown_benchmark_is_refused():
    proc = run_bench("--quick", "nope", timeout=120)
    assert proc.returncode == 2 and "accepted: overhead, mirror" in proc.stderr


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=REPO, text=True, capture_output=True,
                          timeout=1800)


@pytest.mark.slow
@pytest.mark.xdist_group("bench")  # one worker runs the quick benchmarks once (--dist loadgroup in .ci/run)
@pytest.mark.parametrize("bench", sorted(EXPECTED))
def test_quick_run_prints_every_result_last(quick_run, bench):
    assert quick_run.returncode == 0, quick_run.stdout[-3000:] + quick_run.stderr[-3000:]
    names = final_results(quick_run.stdout)
    missing = EXPECTED[bench] - set(names)
    assert not missing, f"{bench} printed no {sorted(missing)}"
    assert f"[{bench}] done in" in quick_run.stdout


@pytest.mark.slow
def test_the_overhead_profile_times_the_framework_without_each_piece(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "bench.profile_overhead", "--episodes", "8", "--repeats", "1"],
                          cwd=tmp_path, env=env, text=True, capture_output=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not list(tmp_path.iterdir())  # it writes nothing where it runs (its runs live in a temporary dir)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("without ")]
    assert len(lines) == 7 and all(re.search(r"Trainer / plain \d+\.\d{3} ", line) for line in lines), lines
