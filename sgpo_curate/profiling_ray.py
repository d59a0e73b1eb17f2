"""The Ray engine of profiling: generation in an actor pool, verification in a CPU stage, on Ray Data.

    profile(queries, SamplerSpec("vllm", "Qwen/Qwen2.5-7B-Instruct"), get_verifier("math", workers=1),
            ProfileConfig(out_dir="runs/big"), SamplingConfig(k=8, batch_queries=256),
            engine=RayEngine(address="auto"))

or, from a shell on the head node of a cluster started with `ray start --head` (and `ray start
--address HEAD:6379` on the others):

    sgpo-curate profile --engine ray --ray-address auto --sampler vllm --model ORG/MODEL \\
        --dataset gsm8k --k 8 --batch-queries 256 --out runs/big

Why Ray Data and not a scheduler of our own: users who outgrow one machine already run Ray (verl
does; vLLM's offline batch inference is Ray Data), and it brings what a long run needs: a streaming
pipeline whose stages overlap, actor pools sized to the GPUs, and task/actor retries when a worker dies.

How a run flows. The driver (this process) does everything `profiling.profile` does for any engine:
it selects this shard's queries, skips the finished ones and cuts the rest into the same chunks of
`batch_queries` as the local engine. Each chunk becomes one row of a Ray Dataset. Stage 1 is an actor
pool (`map_batches` with `_Generate`): each actor builds its own sampler from a `SamplerSpec` (one per
GPU, `num_gpus` set) and samples one chunk per call, each sample from its own seeded stream, so a
Ray run gives exactly the profiles of a local run. Stage 2 is a CPU actor pool (`_Verify`) that runs the
verifier while stage 1 generates. The driver receives finished chunks in any order and writes each as
one parquet part with the local engine's writer, so `run.json`, resume and `merge` are the same code.

Failures. A worker process that dies mid-chunk is restarted by Ray (`max_restarts`) and its chunk is
retried (`max_task_retries`); nothing reaches disk until a chunk is whole. If the driver dies, the
finished parts stay and rerunning the command resumes from them. Only the driver writes, so `out_dir`
need not be on a shared filesystem; the model must load on every worker (a Hub id, or a path present
on every node), and this package must be installed on every node.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sgpo_curate._extras import requires
from sgpo_curate.config import SamplingConfig
from sgpo_curate.errors import InputError
from sgpo_curate.profiling import ChunkResult, verify_chunk
from sgpo_curate.records import Query
from sgpo_curate.registry import ENGINES
from sgpo_curate.samplers import SamplerSpec

logger = logging.getLogger(__name__)


def import_ray():
    """`ray` and `ray.data`, or a `MissingExtraError` that names the `ray` extra."""
    with requires("ray"):  # or profile with --engine local
        import ray
        import ray.data
    return ray


@ENGINES.register("ray")
@dataclass(frozen=True)
class RayEngine:
    """Profile on a Ray cluster: a sampler actor per GPU (or CPU slot), a verifier actor pool beside it."""

    name: ClassVar[str] = "ray"
    # Each verifier actor reserves `cpus_per_verifier` CPUs, so its own process pool gets as many.
    default_verifier_workers: ClassVar[int | None] = 1

    address: str | None = field(
        default=None,
        metadata={
            "help": "Ray cluster to join: `auto` (the cluster `ray start --head` started here), "
            "`ray://HOST:10001`, or unset for a local instance. Ignored when Ray is already initialised."
        },
    )
    num_generators: int | None = field(
        default=None,
        metadata={
            "help": "Sampler actors, each with its own model; default: one per GPU of the cluster, or "
            "on a cluster without GPUs one per CPU left after a verifier."
        },
    )
    gpus_per_generator: float | None = field(
        default=None,
        metadata={"help": "GPUs per sampler actor; default: 1 when the cluster has GPUs, else 0."},
    )
    cpus_per_generator: float = field(default=1, metadata={"help": "CPUs per sampler actor."})
    num_verifiers: int | None = field(
        default=None,
        metadata={
            "help": "Verifier actors; default: as many as the queue needs, up to the CPUs the "
            "sampler actors leave free."
        },
    )
    cpus_per_verifier: float = field(
        default=1, metadata={"help": "CPUs per verifier actor (give the verifier as many workers)."}
    )
    max_restarts: int = field(
        default=3, metadata={"help": "How often Ray restarts an actor whose process died (-1: always)."}
    )
    max_task_retries: int = field(
        default=3, metadata={"help": "How often Ray retries a chunk whose actor died (-1: always)."}
    )

    def __post_init__(self) -> None:
        for name in ("num_generators", "num_verifiers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"RayEngine.{name} must be >= 1, got {value}")
        for name in ("cpus_per_generator", "cpus_per_verifier"):
            if getattr(self, name) <= 0:
                raise ValueError(f"RayEngine.{name} must be > 0, got {getattr(self, name)}")
        if self.gpus_per_generator is not None and self.gpus_per_generator < 0:
            raise ValueError(f"RayEngine.gpus_per_generator must be >= 0, got {self.gpus_per_generator}")
        for name in ("max_restarts", "max_task_retries"):
            if getattr(self, name) < -1:
                raise ValueError(f"RayEngine.{name} must be >= -1, got {getattr(self, name)}")

    def make_sampler(self, name: str, model: str) -> SamplerSpec:
        """A description of the sampler: each actor loads its own model, the driver loads none."""
        return SamplerSpec(name, model)

    def run(
        self, chunks: Iterable[list[Query]], sampler, verifier, sampling: SamplingConfig
    ) -> Iterator[ChunkResult]:
        """Generate and verify `chunks` on the cluster; yield each chunk's result as it completes."""
        if not isinstance(sampler, SamplerSpec):
            raise TypeError(
                "the ray engine builds a sampler on each worker: pass SamplerSpec(name, model), "
                f"not a loaded {type(sampler).__name__}"
            )
        ray = import_ray()
        started_here = self._connect(ray)
        try:
            chunks = list(chunks)
            if chunks:
                yield from self._results(ray, chunks, sampler, verifier, sampling)
        finally:
            if started_here:
                ray.shutdown()

    def _connect(self, ray) -> bool:
        """Join the cluster (or start a local one); True when this call started Ray."""
        if ray.is_initialized():
            return False
        try:
            ray.init(address=self.address)
        except ConnectionError as exc:  # `auto` with no cluster running: a bad address, not a crash
            raise InputError(
                f"no Ray cluster at --ray-address {self.address!r} ({exc}); start one with `ray start --head` "
                "(and `ray start --address HEAD_IP:6379` on the other nodes), or leave --ray-address out "
                "to start a local instance"
            ) from exc
        return True

    def _results(self, ray, chunks, sampler: SamplerSpec, verifier, sampling) -> Iterator[ChunkResult]:
        # One chunk per row and per block: one actor call per chunk, so a dead worker costs one chunk.
        rows = [{"index": i, "queries": pickle.dumps(chunk)} for i, chunk in enumerate(chunks)]
        data = ray.data.from_items(rows, override_num_blocks=len(rows))
        data.context.enable_progress_bars = False  # the driver's own bar counts queries
        data = self._pipeline(data, sampler, verifier, sampling, self.pool_sizes(ray.cluster_resources()))
        for row in data.iter_rows():
            index = int(row["index"])
            verdicts = pickle.loads(row["verdicts"])
            yield ChunkResult(
                index, tuple(chunks[index]), pickle.loads(row["samples"]), verdicts.rewards, verdicts.tampered
            )

    def _pipeline(self, data, sampler: SamplerSpec, verifier, sampling, sizes: PoolSizes):
        """Stage 1, the sampler actors; stage 2, the verifier actors, which run while stage 1 generates."""
        from ray.data import ActorPoolStrategy

        logger.info("ray engine: %s", sizes)
        retries = {"max_restarts": self.max_restarts, "max_task_retries": self.max_task_retries}
        with warnings.catch_warnings():
            # Ray Data 2.60 deprecates extra remote args but names no replacement for these two yet.
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            data = data.map_batches(
                _Generate,
                fn_constructor_args=(sampler, sampling),
                batch_size=1,
                compute=ActorPoolStrategy(size=sizes.generators),
                num_cpus=self.cpus_per_generator,
                num_gpus=sizes.gpus_per_generator or None,
                **retries,
            )
            return data.map_batches(
                _Verify,
                fn_constructor_args=(verifier,),
                batch_size=1,
                compute=ActorPoolStrategy(min_size=1, max_size=sizes.verifiers),
                num_cpus=self.cpus_per_verifier,
                **retries,
            )

    def pool_sizes(self, resources: dict[str, float]) -> PoolSizes:
        """Actor counts for a cluster with `resources` (`ray.cluster_resources()`)."""
        cpus, gpus = resources.get("CPU", 1), resources.get("GPU", 0)
        gpus_each = self.gpus_per_generator if self.gpus_per_generator is not None else (1 if gpus else 0)
        if self.num_generators:
            generators = self.num_generators
        elif gpus_each:
            generators = max(1, int(gpus // gpus_each))
        else:
            generators = max(1, int((cpus - self.cpus_per_verifier) // self.cpus_per_generator))
        free = cpus - generators * self.cpus_per_generator
        verifiers = self.num_verifiers or max(1, int(free // self.cpus_per_verifier))
        return PoolSizes(generators, gpus_each, verifiers)


@dataclass(frozen=True)
class PoolSizes:
    """How many actors each stage gets."""

    generators: int
    gpus_per_generator: float
    verifiers: int


class _Generate:
    """Stage 1: one sampler per actor, built from its spec; one chunk per call."""

    def __init__(self, spec: SamplerSpec, sampling: SamplingConfig):
        self.sampler = spec.build()
        self.sampling = sampling

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        samples = []
        for blob in batch["queries"]:
            chunk = pickle.loads(blob)
            # The seed is the run's; the sampler derives each call's seed from the chunk's ids.
            samples.append(pickle.dumps(tuple(self.sampler.sample(chunk, self.sampling, self.sampling.seed))))
        return {"index": batch["index"], "queries": batch["queries"], "samples": samples}


class _Verify:
    """Stage 2: the verifier on CPUs, overlapping stage 1; the queries stay behind (the driver has them).

    Each actor holds its own copy of the verifier, so what it counts (tampered verdicts) never reaches the
    driver's copy: the count travels with the chunk's rewards (`Verdicts`)."""

    def __init__(self, verifier):
        self.verifier = verifier

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        verdicts = [
            pickle.dumps(verify_chunk(self.verifier, pickle.loads(queries), pickle.loads(samples)))
            for queries, samples in zip(batch["queries"], batch["samples"], strict=True)
        ]
        return {"index": batch["index"], "samples": batch["samples"], "verdicts": verdicts}

    def __del__(self) -> None:  # Ray Data deletes the UDF when the pool shuts down: stop its workers
        close = getattr(self.verifier, "close", None)
        if close:
            close()
