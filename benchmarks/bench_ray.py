"""The Ray engine against the local engine on the same work, and a scaling plan from what was measured.

Both engines profile the same GSM8K queries with the tiny model (k samples each, math-verify), in one
run: the local engine in this process (1 torch thread, 1 verify worker), the Ray engine on a local
cluster of `--cpus` CPUs (one sampler actor, one verifier actor). Reported: end-to-end wall time
(Ray's includes starting its actors and loading the model in them), the steady rate between the first
and the last finished chunk, CPU seconds of every process involved, and whether the profiles are identical.

The plan below the table scales the measured overheads to a GPU cluster with vLLM. GPU generation
rates are inputs (`--gpu-tokens-per-s`), not measured here: this machine has no GPU.

    python benchmarks/bench_ray.py [--queries 64] [--k 8] [--max-new-tokens 48] [--cpus 2]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common import RESULTS, readme_markers, rewrite_readme_block, write_table

from sgpo_curate.config import ProfileConfig, SamplingConfig
from sgpo_curate.models import save_tiny_model
from sgpo_curate.profiling import LocalEngine, profile
from sgpo_curate.profiling_ray import RayEngine
from sgpo_curate.samplers import SamplerSpec, get_sampler
from sgpo_curate.sources import load_queries
from sgpo_curate.verifiers.math import MathVerifier

# Inputs of the plan, with where they come from.
# Llama-3.1-8B BF16 on one H100 80GB under vLLM (FlashInfer, 0.8 GPU memory utilisation): ~12,500 output
# tokens/s, a third-party figure collected at morphllm.com/vllm-benchmarks. Not measured here.
GPU_TOKENS_PER_S = 12_500
MATH_CHECKS_PER_CORE = 180  # DESIGN.md, distinct math-verify checks/s per core (the slow end; GSM8K: ~1000)
# benchmarks/results/sandbox.md: the judged CodeVerifier under full isolation, 1 worker (134 ms per execution
# on a loaded machine); the verdict a user gets, so the plan does not assume the cheaper plain runner.
CODE_RUNS_PER_CORE = 7.5
GPU_COUNTS = (1, 8, 64, 256)


class Timed:
    """An engine wrapper that notes when each chunk comes back."""

    def __init__(self, engine):
        self.engine = engine
        self.started = 0.0
        self.finished: list[float] = []

    def run(self, chunks, sampler, verifier, sampling):
        self.started = time.perf_counter()
        for result in self.engine.run(chunks, sampler, verifier, sampling):
            self.finished.append(time.perf_counter())
            yield result

    @property
    def first_chunk_s(self) -> float:
        return self.finished[0] - self.started

    def steady_chunk_s(self) -> float:
        """Seconds per chunk between the first finished chunk and the last (start-up excluded)."""
        return (self.finished[-1] - self.finished[0]) / max(1, len(self.finished) - 1)


class CpuMeter:
    """CPU seconds of this process and its descendants, polled from a thread: on a shared machine wall
    time says as much about the other users as about us. Ray's processes (daemons, workers) count only
    when `include_ray`; a process that exits between two polls loses at most its last `interval` s."""

    def __init__(self, include_ray: bool, interval: float = 0.1):
        import psutil

        self.me = psutil.Process()
        self.include_ray = include_ray
        self.interval = interval
        self.start = self._sample()
        self.last = dict(self.start)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _sample(self) -> dict[int, float]:
        import psutil

        cpu = {}
        for process in [self.me, *self.me.children(recursive=True)]:
            try:
                if (
                    process.pid != self.me.pid
                    and not self.include_ray
                    and "ray" in " ".join(process.cmdline())
                ):
                    continue
                times = process.cpu_times()
                cpu[process.pid] = times.user + times.system
            except psutil.Error:
                continue
        return cpu

    def _poll(self) -> None:
        while not self.stopped.wait(self.interval):
            self.last.update(self._sample())

    def stop(self) -> float:
        self.stopped.set()
        self.thread.join()
        self.last.update(self._sample())
        return sum(seconds - self.start.get(pid, 0.0) for pid, seconds in self.last.items())


@dataclass
class Run:
    timed: Timed
    wall_s: float
    cpu_s: float


def profile_with(engine, queries, sampler, verifier, sampling, out: Path) -> Run:
    """One `profile()` run: chunk times, wall seconds, CPU seconds (Ray's processes count for Ray only)."""
    timed = Timed(engine)
    meter = CpuMeter(include_ray=isinstance(engine, RayEngine))
    start = time.perf_counter()
    profile(
        queries, sampler, verifier, ProfileConfig(out_dir=str(out), progress=False), sampling, engine=timed
    )
    wall = time.perf_counter() - start
    return Run(timed, wall, meter.stop())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-queries", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster.")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each engine, alternating; best kept.")
    parser.add_argument("--gpu-tokens-per-s", type=float, default=GPU_TOKENS_PER_S)
    parser.add_argument("--plan-queries", type=int, default=1_000_000)
    parser.add_argument("--plan-k", type=int, default=8)
    parser.add_argument("--plan-completion-tokens", type=int, default=512)
    parser.add_argument("--plan-batch-queries", type=int, default=256)
    parser.add_argument(
        "--plan-only",
        action="store_true",
        help="Measure nothing: re-render the plan in ray.md from its measured Ray overhead (after a change "
        "to the plan's inputs).",
    )
    parser.add_argument("--readme", help="README whose marked plan block is rewritten.")
    args = parser.parse_args()
    if args.plan_only:
        rewrite_plan(args)
    else:
        measure(args)
    if args.readme:
        plan = (RESULTS / "ray.md").read_text().split(PLAN_HEADING, 1)[1].split("\n", 1)[1]
        rewrite_readme_block(Path(args.readme), README_MARKERS, plan.strip())


PLAN_HEADING = "#### Plan:"
README_MARKERS = readme_markers("bench_ray plan", "benchmarks/bench_ray.py")
_OVERHEAD = re.compile(r"\(([0-9.]+) s each, start-up included\)")


def rewrite_plan(args: argparse.Namespace) -> None:
    """Replace the plan section of ray.md, keeping its measured part and the overhead it measured."""
    text = (RESULTS / "ray.md").read_text()
    found = _OVERHEAD.search(text)
    if PLAN_HEADING not in text or found is None:
        raise SystemExit(
            "benchmarks/results/ray.md has no measured plan: run the benchmark without --plan-only"
        )
    measured = text.split(PLAN_HEADING, 1)[0]
    (RESULTS / "ray.md").write_text(measured + plan_text(args, float(found.group(1))) + "\n")


def measure(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq
    import ray
    import torch

    torch.set_num_threads(1)
    model = str(save_tiny_model(tempfile.mkdtemp()))
    queries = load_queries("gsm8k", limit=args.queries)[0]
    sampling = SamplingConfig(k=args.k, max_new_tokens=args.max_new_tokens, batch_queries=args.batch_queries)
    verifier = MathVerifier(workers=1)
    verifier([r"$\boxed{1}$"], queries[:1])  # start the local worker outside the timing
    sampler = get_sampler("transformers", model)
    work = Path(tempfile.mkdtemp())
    load_before = os.getloadavg()[0]

    start = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    init_s = time.perf_counter() - start
    local_runs, ray_runs = [], []
    for repeat in range(args.repeats):  # alternate, so load from other users falls on both
        local_runs.append(
            profile_with(LocalEngine(), queries, sampler, verifier, sampling, work / f"l{repeat}")
        )
        spec = SamplerSpec("transformers", model)
        ray_runs.append(profile_with(RayEngine(), queries, spec, verifier, sampling, work / f"r{repeat}"))
    ray.shutdown()
    verifier.close()
    tables = [pq.read_table(work / run / "profiles.parquet") for run in sorted(os.listdir(work))]
    same = all(table == tables[0] for table in tables)

    local = min(local_runs, key=lambda run: run.wall_s)
    remote = min(ray_runs, key=lambda run: run.wall_s)
    samples, chunks = len(queries) * args.k, len(local.timed.finished)
    extra_cpu = remote.cpu_s - local.cpu_s
    rows = [
        measured_row("local engine", local, local, samples),
        measured_row("ray engine", remote, local, samples),
        ["(ray.init, local cluster start)", f"{init_s:.1f}", "-", "-", "-", "-", "-", "-"],
    ]
    notes = [
        f"{chunks} chunks of {args.batch_queries} queries; best (by wall time) of {args.repeats} alternating "
        f"runs of each engine; identical profiles in every run of both engines: {'yes' if same else 'NO'}. "
        f"Ratios are local / Ray: below 1, Ray is slower (wall) or spends more (CPU). Ray spends "
        f"{extra_cpu:.1f} more CPU-seconds on the same work, most of it starting its actors (each imports "
        "torch and transformers and loads the model; the verifier actor starts its own pool), and returns its "
        f"first chunk {remote.timed.first_chunk_s - local.timed.first_chunk_s:+.1f} s after the local engine "
        "does. Steady s/chunk is the wall time between the first and the last finished chunk (the local "
        "engine returns chunk i once chunk i+1 is generated).",
        "",
        f"Load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores "
        "shared with other users: wall figures move by tens of percent between runs, and under contention "
        "Ray's separate sampler process draws its own share of the cores, which the local engine's one "
        "generating thread does not; CPU seconds are the steadier measure of what Ray costs.",
        "",
        plan_text(args, extra_cpu / chunks),
    ]
    write_table(
        "ray",
        f"Ray engine vs local engine ({args.queries} GSM8K queries x k={args.k}, {args.max_new_tokens} new "
        f"tokens, tiny model, Ray cluster of {args.cpus} CPUs: 1 sampler actor + 1 verifier actor)",
        [
            "engine",
            "wall s",
            "samples/s",
            "wall ratio",
            "CPU s",
            "CPU ratio",
            "first chunk s",
            "steady s/chunk",
        ],
        rows,
        notes="\n".join(notes),
    )


def measured_row(name: str, run: Run, local: Run, samples: int) -> list:
    return [
        name,
        f"{run.wall_s:.1f}",
        f"{samples / run.wall_s:.1f}",
        f"{local.wall_s / run.wall_s:.2f}",
        f"{run.cpu_s:.1f}",
        f"{local.cpu_s / run.cpu_s:.2f}",
        f"{run.timed.first_chunk_s:.1f}",
        f"{run.timed.steady_chunk_s():.2f}",
    ]


def plan_text(args, chunk_overhead_s: float) -> str:
    """Wall time and GPU-hours for the planned run on N GPUs, and the verifier cores each GPU needs."""
    samples = args.plan_queries * args.plan_k
    tokens = samples * args.plan_completion_tokens
    gpu_hours = tokens / args.gpu_tokens_per_s / 3600
    samples_per_gpu_s = args.gpu_tokens_per_s / args.plan_completion_tokens
    chunk_gpu_s = args.plan_batch_queries * args.plan_k * args.plan_completion_tokens / args.gpu_tokens_per_s
    chunks = math.ceil(args.plan_queries / args.plan_batch_queries)
    lines = [
        f"#### Plan: {args.plan_queries:,} queries x k={args.plan_k} = {samples:,} samples of "
        f"{args.plan_completion_tokens} tokens with vLLM (one sampler actor per GPU)",
        "",
        "| GPUs | wall hours | GPU-hours | samples/s | math-verify cores | sandbox cores |",
        "|---|---|---|---|---|---|",
    ]
    for gpus in GPU_COUNTS:
        rate = gpus * samples_per_gpu_s
        lines.append(
            f"| {gpus} | {gpu_hours / gpus:.1f} | {gpu_hours:.0f} | {rate:,.0f} | "
            f"{math.ceil(rate / MATH_CHECKS_PER_CORE)} | {math.ceil(rate / CODE_RUNS_PER_CORE)} |"
        )
    lines += [
        "",
        f"Inputs: {args.gpu_tokens_per_s:,.0f} generated tokens/s per GPU (not measured here: a published "
        "third-party figure for Llama-3.1-8B BF16 on one H100 under vLLM, collected at "
        "morphllm.com/vllm-benchmarks; pass `--gpu-tokens-per-s` for your model and GPU), "
        f"{MATH_CHECKS_PER_CORE} math-verify checks/s per core (DESIGN.md, the slow end; GSM8K "
        f"answers ran ~1000/s in verify.md), {CODE_RUNS_PER_CORE} sandboxed executions/s per core "
        "(sandbox.md). Prompt prefill is left out (vLLM shares it across the k samples of a query).",
        f"What Ray adds: {chunks:,} chunks of {args.plan_batch_queries} queries each take "
        f"~{chunk_gpu_s:.0f} GPU-seconds. Charging every extra CPU-second measured above to the chunks "
        f"({chunk_overhead_s:.2f} s each, start-up included) would add {100 * chunk_overhead_s / chunk_gpu_s:.1f}% "
        "if it held up the GPU, and it does not: the driver decodes and writes parts while the actors "
        "generate. The fixed cost that remains is one model load per sampler actor at the start (minutes "
        "for a 7-8B model), paid once per run.",
        f"Where the verifier pool becomes the bottleneck: each GPU produces {samples_per_gpu_s:.0f} samples/s, "
        f"so it needs {samples_per_gpu_s / MATH_CHECKS_PER_CORE:.2f} cores of math-verify or "
        f"{samples_per_gpu_s / CODE_RUNS_PER_CORE:.1f} cores of sandbox beside it; a node with fewer free "
        "cores per GPU than that is verifier-bound (more so with shorter answers or smaller, faster models: "
        "cores per GPU = tokens/s per GPU / tokens per sample / checks per core per s).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
