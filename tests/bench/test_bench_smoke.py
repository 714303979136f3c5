"""The benchmarks run and report in the agreed format. Timings are never asserted: benchmarks are not tests."""
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

RESULT = re.compile(r"^RESULT (\S+) (-?[0-9.]+(?:e[-+]?[0-9]+)?|nan|inf) (\S+)$")
ARCHS = ("unet", "snn_unet", "mlp", "deep_qca")
EXPECTED = {
    "overhead": {f"overhead{variant}.time_ratio" for variant in ("", ".short", ".tiny")},
    "mirror": {"mirror.throughput_ratio"},
    "remote_lag": {"mirror.remote_lag_episodes.median", "mirror.remote_lag_episodes.max",
                   "mirror.remote_lag_episodes.max_at_publish", "mirror.episodes_per_upload",
                   "mirror.episodes_per_upload.max"},
    "budget": {"budget.median_used", "budget.overruns"},
    "memory": {f"memory.{mode}.steps{steps}" for mode in ("full", "checkpoint", "tbptt10") for steps in (10, 50, 100)}
    | {"memory.checkpoint_over_full.steps100"},
    "throughput": {f"throughput.{arch}.g{grid}.{mode}" for arch in ARCHS for grid in (32, 64, 128)
                   for mode in ("forward", "train")}
    | {f"throughput.{arch}.g32.train.b{batch}" for arch in ARCHS for batch in (1, 4, 16)}
    | {"throughput.unet.g32.train.compile_speedup", "throughput.unet.g32.forward.compile_speedup"},
    "evaluation": {"evaluation.inline.time_ratio", "evaluation.background.time_ratio"},
    "startup": {"startup.train_help", "startup.status_help", "startup.import_lightning",
                "startup.train_help.imports_torch", "startup.status_help.imports_torch"},
    "science": {f"science.qca.{arch}.gain_over_trivial" for arch in ARCHS}
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
    assert len(lines) == 6 and all(re.search(r"Trainer / plain \d+\.\d{3} ", line) for line in lines), lines


GPU_CHECK = ({f"gpu_check.throughput.{arch}.g16.{mode}" for arch in ARCHS
              for mode in ("b1.fp32", "b1.amp", "b2.fp32", "b2.amp", "b2.compiled")}
             | {f"gpu_check.compile.{arch}.first_episode_s" for arch in ARCHS}
             | {f"gpu_check.precision.{arch}.{weights}.{dtype}.{figure}" for arch in ARCHS
                for weights in ("initial", "far") for dtype in ("fp16", "bf16")
                for figure in ("loss_diff", "grad_cosine")}
             | {"gpu_check.throughput.best_over_planning", "gpu_check.overhead.tiny.time_ratio",
                "gpu_check.train.first_session_episodes", "gpu_check.train.second_session_episodes",
                "gpu_check.nvml.gpu_util_max", "gpu_check.nvml.gpu_mem_used_gb_max",
                "gpu_check.evaluation.inline.time_ratio", "gpu_check.evaluation.background.time_ratio"})


def test_the_gpu_check_without_a_gpu_says_so_in_one_line_and_how_to_run_it_on_the_cpu():
    proc = run_bench("--gpu-check", timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    (line,) = [x for x in proc.stdout.splitlines() if "error:" in x]
    assert line.startswith("[gpu_check] error: no GPU here") and "--cpu" in line
    wrong = run_bench("--cpu", "budget", timeout=120)
    assert wrong.returncode == 2 and "--cpu goes with --gpu-check only" in wrong.stderr


@pytest.mark.slow
def test_the_gpu_check_runs_every_step_on_the_cpu():
    proc = run_bench("--gpu-check", "--cpu", timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    names = final_results(proc.stdout)
    assert set(names) == GPU_CHECK
    assert "resumed where the first stopped" in proc.stdout and "stopped-budget at episode" in proc.stdout
