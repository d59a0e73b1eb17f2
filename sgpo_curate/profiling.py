"""Profiling: k samples per query under the initial policy, verified, one `QueryProfile` per query.

    summary = profile(queries, sampler, verifier, ProfileConfig(out_dir="runs/p"), SamplingConfig(k=8))

`queries` is a stream of records: `Query`s to profile, and `Reject`s a source yields for rows it could not
use (`Source.records`), which are written to the shard's `rejects.jsonl` as they pass and counted in the
summary. No list is shared between the source and the run.

How it stays cheap and safe on long runs:
- Streaming: queries are taken `batch_queries` at a time; each chunk's profiles are written as one
  parquet part, atomically (temp file + rename), so memory does not grow with the dataset and a
  killed run (Ctrl-C or SIGKILL) loses at most the chunk in flight.
- Resume: rerunning the same command skips ids already in finished parts. Chunks are cut from the
  same query order and seeded from their ids, so a resumed run writes exactly what an uninterrupted
  one would have. A rerun with other settings (`RUN_IDENTITY`) or other queries under the same ids
  (`QUERY_IDENTITY`: another instruction, say) is refused, naming what differs.
- Sharding: `shard_index/num_shards` splits queries by a hash of their id (deterministic, order
  free); each worker writes its own `shard-i-of-n/` folder and `merge` joins them.
- Overlap: the verifier of chunk i runs in a background thread (its own process pool does the work)
  while chunk i+1 is generated.
- Engines: where chunks are generated and verified is pluggable (`engine="local"`, this process;
  `engine="ray"`, an actor pool on a Ray cluster, see `profiling_ray`). Selection, resume, parts,
  `run.json` and `merge` live here, once, whatever the engine: an engine only turns chunks into
  `ChunkResult`s, in any order.
- Adaptive (`ProfileConfig.adaptive`): each chunk is sampled in rounds (2, 4, 6, ... up to k) through the
  engine and a query leaves once its decisions are settled (`sgpo_curate.adaptive`); its profile holds the
  samples it took. Every sample has its own seed, so those are the first samples a fixed-k run draws.

Layout of `out_dir`: `run.json` (model, sampling, verifier, versions), `shard-*/part-*.parquet` (each
part's schema metadata holds its chunk's tampered-sample count, so totals come from the parts that exist,
whatever engine verified them and however often the run was resumed), `shard-*/rejects.jsonl`,
`shard-*/DONE.json` (the shard's summary), `profiles.parquet` (merged).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import math
import os
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sgpo_curate.adaptive import StoppingRule
from sgpo_curate.config import AdaptiveConfig, ProfileConfig, SamplingConfig
from sgpo_curate.errors import InputError
from sgpo_curate.policy import BetaMixture
from sgpo_curate.records import Query, QueryProfile, Reject
from sgpo_curate.registry import ENGINES

if TYPE_CHECKING:
    from sgpo_curate.samplers import Sampler, SamplerSpec, Samples
    from sgpo_curate.verifiers import Verifier

logger = logging.getLogger(__name__)

PROFILES_FILE = "profiles.parquet"
RUN_FILE = "run.json"
# Run settings that must match between a run and its resume: mixing them would corrupt the profile.
# (Package versions and the date may differ: a resume after an upgrade or on another day is allowed.)
RUN_IDENTITY = (
    "model",
    "model_revision",
    "sampler",
    "sampler_version",
    "sampling",
    "adaptive",
    "verifier",
    "verifier_version",
    "verifier_settings",
    "source",
)
# What a query's profile depends on besides the run settings: what the policy saw and what the verifier
# checked. A resume compares them for every finished query, so another instruction, system prompt or
# version of the source cannot slip into a folder under the same ids.
QUERY_IDENTITY = ("prompt", "answer", "tests", "entry_point")
QUERY_COLUMNS = ("id", "source", "domain", "prompt", "answer", "tests", "entry_point", "metadata")
# Recorded but free to change on resume: every sample has its own seed, so the batch size changes how
# samples are drawn together, not which samples are drawn.
FREE_SETTINGS = ("sampling.batch_queries",)
HISTOGRAM_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0)
PACKAGES = ("sgpo-curate", "torch", "transformers", "math-verify", "datasets", "trl")
# Schema-metadata key of a part file: tampered samples among the part's verdicts (a sandbox verdict that
# scores 0 like a wrong answer, so the rewards alone cannot tell it).
TAMPERED_KEY = b"sgpo_curate.tampered_samples"


@dataclass
class ProfileSummary:
    """Totals of a profiling run (this shard, finished work included)."""

    out_dir: str
    queries: int = 0
    samples: int = 0
    unverifiable_samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    num_parameters: int = 0
    resumed_queries: int = 0
    wall_seconds: float = 0.0
    histogram: dict[str, int] = field(default_factory=dict)
    rejects: dict[str, int] = field(default_factory=dict)
    fixed_k_samples: int = 0
    # Samples whose program reached for the sandbox's harness (verdict `tampered`, scored 0).
    tampered_samples: int = 0

    @property
    def generation_tokens(self) -> int:
        """Tokens the model processed: every prompt once per query and round (the sampler encodes it once and
        shares it among the round's samples), plus every generated token."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def flops(self) -> float:
        """Estimated generation FLOPs, 2 x parameters x processed tokens."""
        return 2.0 * self.num_parameters * self.generation_tokens

    def format(self) -> str:
        lines = [
            f"profiled {self.queries} queries ({self.resumed_queries} from earlier runs), {self.samples} samples",
            f"tokens: {self.completion_tokens:,} generated, {self.prompt_tokens:,} prompt; "
            f"estimated FLOPs {self.flops:.3g} (2 x {self.num_parameters:,} params x tokens)",
        ]
        if self.fixed_k_samples:
            lines.append(
                f"adaptive: {self.samples} samples where fixed k takes {self.fixed_k_samples} "
                f"({1 - self.samples / self.fixed_k_samples:.0%} fewer)"
            )
        if self.unverifiable_samples:
            lines.append(f"unverifiable samples (gold answer did not parse): {self.unverifiable_samples}")
        if self.tampered_samples:
            lines.append(
                f"tampered samples (reached for the sandbox's harness, scored 0): {self.tampered_samples}"
            )
        if self.rejects:
            lines.append("rejected source rows: " + ", ".join(f"{r}: {n}" for r, n in self.rejects.items()))
        lines.append("pass-rate histogram:")
        width = max(self.histogram.values(), default=0) or 1
        for bucket, count in self.histogram.items():
            lines.append(f"  {bucket:>12} {count:6d} {'#' * round(30 * count / width)}")
        lines.append(f"profiles: {self.out_dir}")
        return "\n".join(lines)


def shard_of(query_id: str, num_shards: int) -> int:
    """Which shard a query belongs to: a stable hash of its id, independent of order."""
    return int.from_bytes(hashlib.sha1(query_id.encode()).digest()[:8], "big") % num_shards


def shard_dir(out_dir: str | os.PathLike, shard_index: int, num_shards: int) -> Path:
    return Path(out_dir) / f"shard-{shard_index:05d}-of-{num_shards:05d}"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def describe_run(
    sampler: Sampler | SamplerSpec,
    verifier: Verifier,
    sampling: SamplingConfig,
    source: str,
    source_license: str = "unknown",
    stopping: StoppingRule | None = None,
    source_hub_id: str | None = None,
) -> dict:
    """What `run.json` records: enough to reproduce the profile and to write the dataset card.

    `verifier_settings` are the verifier's verdict-changing settings (e.g. the math extraction mode):
    `VerifierReward.from_run_info` rebuilds the same reward from them for training.
    """
    from sgpo_curate.models import hub_id

    adaptive = None
    if stopping is not None:
        adaptive = {
            "schedule": list(stopping.schedule),
            "confidence": stopping.confidence,
            "rule": stopping.rule,
            "g_min": stopping.g_min,
            "g_max": stopping.g_max,
            "prior": stopping.prior.to_list(),
        }
    return {
        "model": sampler.model_name,
        "model_hub_id": hub_id(sampler.model_name),
        "model_revision": sampler.model_revision,
        "num_parameters": sampler.num_parameters,
        "sampler": sampler.name,
        "sampler_version": getattr(sampler, "version", None),
        "sampling": asdict(sampling),
        "verifier": getattr(verifier, "name", type(verifier).__name__),
        "verifier_version": getattr(verifier, "version", None),
        "verifier_settings": dict(getattr(verifier, "settings", None) or {}),
        "source": source,
        "source_license": source_license,
        "source_hub_id": source_hub_id,
        "adaptive": adaptive,
        "date": dt.date.today().isoformat(),
        "package_versions": package_versions(),
    }


def _write_run_info(out_dir: Path, info: dict) -> None:
    path = out_dir / RUN_FILE
    if path.exists():
        earlier = json.loads(path.read_text())
        changed = _differences(earlier, info, RUN_IDENTITY)
        if changed:
            raise InputError(
                f"{out_dir} holds a profile made with other settings ({'; '.join(changed)}); "
                f"resume with the same settings, or use a new --out"
            )
        return
    _atomic_write_text(path, json.dumps(info, indent=2, sort_keys=True))


def _differences(earlier: dict, now: dict, keys: Iterable[str], prefix: str = "") -> list[str]:
    """`key: X there, Y now` for every key whose value differs (nested dicts key by key)."""
    out = []
    for key in keys:
        if f"{prefix}{key}" in FREE_SETTINGS:
            continue
        old, new = earlier.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            out += _differences(old, new, sorted({*old, *new}), f"{prefix}{key}.")
        elif old != new:
            out.append(f"{prefix}{key}: {old!r} there, {new!r} now")
    return out


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_part(
    directory: Path, index: int, profiles: list[QueryProfile], keep_completions: bool, tampered: int = 0
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [p.to_row() for p in profiles]
    if not keep_completions:
        for row in rows:
            row["completions"] = []
    table = pa.Table.from_pylist(rows)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), TAMPERED_KEY: str(tampered)})
    path = directory / f"part-{index:06d}.parquet"
    tmp = directory / f".part-{index:06d}.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # atomic: a part is either whole or absent


def part_tampered_samples(part: Path) -> int:
    """Tampered samples recorded in a part file's metadata (0 for parts written before it was recorded)."""
    import pyarrow.parquet as pq

    return int((pq.read_schema(part).metadata or {}).get(TAMPERED_KEY, b"0"))


def _parts(directory: Path) -> list[Path]:
    return sorted(directory.glob("part-*.parquet"))


def _fingerprint(row: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps([row.get(k) for k in QUERY_IDENTITY], sort_keys=True).encode()).hexdigest()


def _finished_queries(directory: Path) -> dict[str, str]:
    """Id -> fingerprint of every query in a finished part of this shard."""
    import pyarrow.parquet as pq

    return {
        row["id"]: _fingerprint(row)
        for part in _parts(directory)
        for row in pq.read_table(part, columns=["id", *QUERY_IDENTITY]).to_pylist()
    }


def _still_to_do(query: Query, finished: dict[str, str], directory: Path) -> bool:
    """True for a query not profiled yet; a finished one must be the very query profiled before."""
    earlier = finished.get(query.id)
    if earlier is None:
        return True
    if earlier != _fingerprint(query.to_row()):
        raise InputError(
            f"query {query.id!r} differs from the one already profiled in {directory} (its prompt, answer "
            "or tests changed: another instruction, system prompt or source version?); resume with the "
            "same inputs, or use a new --out"
        )
    return False


def _select(queries: Iterator[Query], config: ProfileConfig, duplicates: Counter) -> Iterator[Query]:
    """This shard's queries, first `limit` of the source, each id once."""
    seen: set[str] = set()
    for query in islice(queries, config.limit):
        if query.id in seen:
            duplicates[query.id] += 1
            continue
        seen.add(query.id)
        if shard_of(query.id, config.num_shards) == config.shard_index:
            yield query


def _chunks(queries: Iterator[Query], size: int) -> Iterator[list[Query]]:
    while chunk := list(islice(queries, size)):
        yield chunk


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """One chunk generated and verified, as an engine hands it back.

    Args:
        index (`int`): the chunk's position in this run's chunk order; its part file is numbered
            from it, so results may arrive in any order.
        queries (`tuple[Query, ...]`): the chunk.
        samples (`tuple[Samples, ...]`): one `Samples` per query.
        rewards (`tuple[float | None, ...]`): flat, k per query, in sample order.
        tampered (`int`): samples among them whose verdict was `tampered` (scored 0; the sandbox's count,
            carried here because the verifier that saw them may live in another process).
    """

    index: int
    queries: tuple[Query, ...]
    samples: tuple[Samples, ...]
    rewards: tuple[float | None, ...]
    tampered: int = 0


@dataclass(frozen=True, slots=True)
class Verdicts:
    """A chunk's rewards (flat, in sample order) and how many of them were `tampered` verdicts."""

    rewards: tuple[float | None, ...]
    tampered: int = 0


class Engine(Protocol):
    """Where chunks are generated and verified. `run` yields one `ChunkResult` per chunk, any order."""

    name: ClassVar[str]
    # Verifier worker processes when the user sets none: None lets the verifier take every core.
    default_verifier_workers: ClassVar[int | None]

    def make_sampler(self, name: str, model: str): ...

    def run(
        self, chunks: Iterable[list[Query]], sampler, verifier, sampling: SamplingConfig
    ) -> Iterator[ChunkResult]: ...


def get_engine(name: str, **options) -> Engine:
    """A registered profiling engine (`local`, `ray`) built with its options (e.g. `address=`)."""
    return ENGINES.get(name)(**options)


def verify_chunk(verifier: Verifier, queries: Iterable[Query], samples: Iterable[Samples]) -> Verdicts:
    """The verifier's rewards for one chunk (every sample of every query, flat, in sample order) and the
    tampered verdicts among them.

    A verifier that can see tampering counts it in `tampered_samples` (the code verifier); the difference
    across this call is this chunk's, since each engine verifies one chunk at a time per verifier.
    """
    texts, flat_queries = [], []
    for query, sample in zip(queries, samples, strict=True):
        texts.extend(sample.texts)
        flat_queries.extend([query] * len(sample.texts))
    before = getattr(verifier, "tampered_samples", 0)
    rewards = tuple(verifier(texts, flat_queries))
    return Verdicts(rewards, getattr(verifier, "tampered_samples", 0) - before)


@ENGINES.register("local")
@dataclass(frozen=True)
class LocalEngine:
    """Generate in this process; verify chunk i in a background thread while chunk i+1 generates."""

    name: ClassVar[str] = "local"
    default_verifier_workers: ClassVar[int | None] = None

    def make_sampler(self, name: str, model: str):
        from sgpo_curate.samplers import get_sampler

        return get_sampler(name, model)

    def run(self, chunks, sampler, verifier, sampling):
        from sgpo_curate.samplers import SamplerSpec

        sampler = sampler.build() if isinstance(sampler, SamplerSpec) else sampler
        with ThreadPoolExecutor(1, thread_name_prefix="verify") as pool:
            pending: tuple[int, list[Query], list, Future] | None = None
            for index, chunk in enumerate(chunks):
                samples = sampler.sample(chunk, sampling, sampling.seed)
                future = pool.submit(
                    verify_chunk, verifier, chunk, samples
                )  # runs while the next chunk generates
                if pending:
                    yield _chunk_result(*pending)
                pending = (index, chunk, samples, future)
            if pending:
                yield _chunk_result(*pending)


def _chunk_result(index: int, chunk: list[Query], samples: list, future: Future) -> ChunkResult:
    verdicts = future.result()
    return ChunkResult(index, tuple(chunk), tuple(samples), verdicts.rewards, verdicts.tampered)


def chunk_profiles(result: ChunkResult, model: str) -> list[QueryProfile]:
    """The `QueryProfile`s of one chunk: each query with its k samples and their rewards."""
    profiles, offset = [], 0
    for query, sample in zip(result.queries, result.samples, strict=True):
        k = len(sample.texts)
        profiles.append(
            QueryProfile(
                query=query,
                model=model,
                rewards=tuple(result.rewards[offset : offset + k]),
                completion_tokens=sample.completion_tokens,
                prompt_tokens=sample.prompt_tokens,
                completions=sample.texts,
            )
        )
        offset += k
    return profiles


def profile(
    queries: Iterable[Query | Reject],
    sampler: Sampler | SamplerSpec,
    verifier: Verifier,
    config: ProfileConfig,
    sampling: SamplingConfig | None = None,
    source: str = "custom",
    source_license: str = "unknown",
    engine: str | Engine = "local",
    source_hub_id: str | None = None,
) -> ProfileSummary:
    """Profile `queries`: k samples each, verified, written as parquet parts under `config.out_dir`.

    Args:
        queries (`Iterable[Query | Reject]`): streamed; a list or a generator, such as a source's
            `records(prompt)`. `Reject`s in it (rows the source could not use) are written to the shard's
            `rejects.jsonl` as they pass and counted in the summary; `limit` counts queries only.
        sampler (`Sampler` or `SamplerSpec`): a registered sampler (`get_sampler(...)`), or a `SamplerSpec`
            that the engine builds (the `ray` engine needs one: each worker loads its own model).
        verifier (`Verifier`): e.g. `get_verifier("math")`; called as `verifier(completions, queries)`.
        config (`ProfileConfig`): output folder, sharding, limit.
        sampling (`SamplingConfig`, *optional*): k, max_new_tokens, temperature, top_p, seed.
        source (`str`), source_license (`str`): recorded in `run.json` for the dataset card.
        source_hub_id (`str`, *optional*): the source's Hub dataset id (`openai/gsm8k`), for the card's
            `source_datasets`.
        engine (`str` or `Engine`): `"local"` (this process), `"ray"` (a Ray cluster, with default
            settings), or a configured engine such as `RayEngine(address="auto")`. Engines give the
            same profiles for the same model, seed and settings.

    Returns:
        `ProfileSummary` of this shard (earlier runs' finished work included). With one shard the
        result is merged into `out_dir/profiles.parquet`.

    Example:
        >>> queries, _ = load_queries("mawps-singleop", limit=4)  # doctest: +SKIP
        >>> profile(queries, get_sampler("transformers", "smollm2-135m-instruct"),
        ...         get_verifier("math"), ProfileConfig(out_dir="runs/demo"), SamplingConfig(k=4))  # doctest: +SKIP
    """
    sampling = sampling or SamplingConfig()
    stopping = stopping_rule(config.adaptive, sampling.k) if config.adaptive else None
    engine = get_engine(engine) if isinstance(engine, str) else engine
    out_dir = Path(config.out_dir)
    directory = shard_dir(out_dir, config.shard_index, config.num_shards)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_info = describe_run(sampler, verifier, sampling, source, source_license, stopping, source_hub_id)
    _write_run_info(out_dir, run_info)
    directory.mkdir(exist_ok=True)  # after the identity check: a refused run leaves no shard folder
    finished = _finished_queries(directory)
    next_part = int(_parts(directory)[-1].stem.split("-")[1]) + 1 if finished else 0
    duplicates: Counter = Counter()
    total = _count_todo(queries, config, finished)
    started = time.perf_counter()
    with (
        _progress(total, config.progress) as bar,
        _RejectLog(directory / "rejects.jsonl") as reject_log,
    ):
        selected = _select(reject_log.queries(queries), config, duplicates)
        todo = (q for q in selected if _still_to_do(q, finished, directory))
        runner = AdaptiveEngine(engine, stopping) if stopping is not None else engine
        for result in runner.run(_chunks(todo, sampling.batch_queries), sampler, verifier, sampling):
            _finish_chunk(directory, next_part + result.index, result, sampler.model_name, config, bar)
            reject_log.flush()
    reasons = Counter(reject_log.reasons)
    if duplicates:
        reasons["duplicate id"] += sum(duplicates.values())
    summary = summarize(
        directory,
        sampler.num_parameters,
        len(finished),
        dict(reasons),
        time.perf_counter() - started,
        out_dir,
        stopping.schedule if stopping else None,
    )
    _atomic_write_text(directory / "DONE.json", json.dumps(asdict(summary), indent=2))
    if config.num_shards == 1:
        merge(out_dir)
    return summary


def load_prior(spec: str) -> BetaMixture:
    """The prior of adaptive profiling: `flat`, or a mixture fitted to the profiles in a folder or parquet file."""
    if spec == "flat":
        return BetaMixture.flat()
    if not Path(spec).exists():
        raise FileNotFoundError(
            f"adaptive prior {spec!r}: not 'flat' and no such profiling folder or profiles.parquet"
        )
    return BetaMixture.fit([(p.num_correct, p.num_samples) for p in load_profiles(spec)])


def stopping_rule(config: AdaptiveConfig, k: int) -> StoppingRule:
    """The `StoppingRule` of an adaptive config for k_max = k, its prior loaded."""
    return StoppingRule.from_config(config, k, load_prior(config.prior))


@dataclass(frozen=True)
class AdaptiveEngine:
    """Adaptive profiling on top of any engine: each chunk goes through `engine` in rounds.

    Round r asks the engine for the samples numbered after those each open query has (`first_sample`), so
    every sample is the one a fixed-k run draws under that number; queries whose decisions are settled
    (`StoppingRule.stops`) leave before the next round. A chunk's result holds, per query, the samples it
    took. Rounds of one chunk run one after the other (each needs the last one's rewards); on the Ray engine
    each round is one pipeline, so use large chunks there (`batch_queries`).
    """

    engine: Any
    stopping: StoppingRule

    @property
    def name(self) -> str:
        return self.engine.name

    def run(
        self, chunks: Iterable[list[Query]], sampler, verifier, sampling: SamplingConfig
    ) -> Iterator[ChunkResult]:
        for index, chunk in enumerate(chunks):
            yield self._rounds(index, chunk, sampler, verifier, sampling)

    def _rounds(
        self, index: int, chunk: list[Query], sampler, verifier, sampling: SamplingConfig
    ) -> ChunkResult:
        from sgpo_curate.samplers import Samples

        texts: dict[str, list[str]] = {q.id: [] for q in chunk}
        tokens: dict[str, list[int]] = {q.id: [] for q in chunk}
        rewards: dict[str, list[float | None]] = {q.id: [] for q in chunk}
        prompt_tokens: dict[str, int] = {}
        active, drawn, tampered = list(chunk), 0, 0
        for target in self.stopping.schedule:
            round_sampling = replace(sampling, k=target - drawn, first_sample=sampling.first_sample + drawn)
            [result] = self.engine.run([active], sampler, verifier, round_sampling)
            tampered += result.tampered
            verdicts = iter(result.rewards)
            for query, sample in zip(result.queries, result.samples, strict=True):
                texts[query.id] += sample.texts
                tokens[query.id] += sample.completion_tokens
                rewards[query.id] += [next(verdicts) for _ in sample.texts]
                prompt_tokens[query.id] = sample.prompt_tokens
            drawn = target
            active = [q for q in active if not self.stopping.stops(rewards[q.id])]
            if not active:
                break
        samples = tuple(Samples(tuple(texts[q.id]), tuple(tokens[q.id]), prompt_tokens[q.id]) for q in chunk)
        flat = tuple(r for q in chunk for r in rewards[q.id])
        return ChunkResult(index, tuple(chunk), samples, flat, tampered)


def _count_todo(
    records: Iterable[Query | Reject], config: ProfileConfig, finished: dict[str, str]
) -> int | None:
    """Queries left, for the progress bar's ETA: exact for lists, estimated from `limit` for streams."""
    if isinstance(records, (list, tuple)):
        queries = [q for q in records if isinstance(q, Query)][: config.limit]
        selected = {q.id for q in queries if shard_of(q.id, config.num_shards) == config.shard_index}
        return len(selected - finished.keys())
    if config.limit is not None:  # a stream we must not consume twice: this shard's expected share
        return max(0, round(config.limit / config.num_shards) - len(finished))
    return None


def _finish_chunk(
    directory: Path, part: int, result: ChunkResult, model: str, config: ProfileConfig, bar
) -> None:
    _write_part(directory, part, chunk_profiles(result, model), config.keep_completions, result.tampered)
    bar.update(len(result.queries))
    bar.samples += len(result.rewards)
    bar.set_postfix_str(f"{bar.samples / max(bar.format_dict['elapsed'], 1e-9):.1f} samples/s", refresh=False)


class _RejectLog:
    """The shard's `rejects.jsonl`: takes the `Reject`s out of a record stream as they pass, writes and counts
    them, and hands the queries on. Rewritten by every run (a rerun reads the source again: once each)."""

    def __init__(self, path: Path):
        self.path = path
        self.reasons: Counter = Counter()

    def __enter__(self) -> _RejectLog:
        self.handle = open(self.path, "w", encoding="utf-8")
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()

    def queries(self, records: Iterable[Query | Reject]) -> Iterator[Query]:
        for record in records:
            if isinstance(record, Reject):
                self.handle.write(record.to_json() + "\n")
                self.reasons[record.reason] += 1
            else:
                yield record

    def flush(self) -> None:
        self.handle.flush()


class _progress:
    """A tqdm bar that also counts samples (for the samples/s postfix)."""

    def __init__(self, total: int | None, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="query", desc="profiling", disable=not enabled, dynamic_ncols=True)
        self.bar.samples = 0

    def __enter__(self):
        return self.bar

    def __exit__(self, *exc) -> None:
        self.bar.close()


def summarize(
    directory: Path,
    num_parameters: int,
    resumed: int,
    rejects: dict[str, int],
    wall_seconds: float,
    out_dir: Path,
    schedule: tuple[int, ...] | None = None,
) -> ProfileSummary:
    """Totals over every finished part of one shard (read column-wise, not whole profiles; tampered samples
    from each part's metadata, so a killed and resumed shard keeps its earlier ones). With an adaptive
    `schedule`, a query's prompt counts once per round it took, and `fixed_k_samples` is what k each costs."""
    import pyarrow.parquet as pq

    summary = ProfileSummary(
        out_dir=str(out_dir),
        num_parameters=num_parameters,
        resumed_queries=resumed,
        rejects=rejects,
        wall_seconds=wall_seconds,
    )
    pass_rates = []
    for part in _parts(directory):
        table = pq.read_table(
            part,
            columns=["num_samples", "num_unverifiable", "pass_rate", "completion_tokens", "prompt_tokens"],
        ).to_pydict()
        summary.queries += len(table["pass_rate"])
        summary.samples += sum(table["num_samples"]) + sum(table["num_unverifiable"])
        summary.unverifiable_samples += sum(table["num_unverifiable"])
        summary.completion_tokens += sum(sum(tokens) for tokens in table["completion_tokens"])
        drawn = [len(tokens) for tokens in table["completion_tokens"]]
        rounds = [bisect_left(schedule, n) + 1 for n in drawn] if schedule else [1] * len(drawn)
        summary.prompt_tokens += sum(p * r for p, r in zip(table["prompt_tokens"], rounds, strict=True))
        summary.fixed_k_samples += schedule[-1] * len(drawn) if schedule else 0
        summary.tampered_samples += part_tampered_samples(part)
        pass_rates.extend(table["pass_rate"])
    summary.histogram = pass_rate_histogram(pass_rates)
    return summary


def pass_rate_histogram(pass_rates: Iterable[float]) -> dict[str, int]:
    """Counts in the buckets that matter for sGPO: exactly 0, the open quarters, exactly 1."""
    buckets = {
        "p=0": 0,
        "0<p<=0.25": 0,
        "0.25<p<=0.5": 0,
        "0.5<p<=0.75": 0,
        "0.75<p<1": 0,
        "p=1": 0,
        "unverifiable": 0,
    }
    names = list(buckets)
    for p in pass_rates:
        if p is None or math.isnan(p):
            buckets["unverifiable"] += 1
        elif p == 0:
            buckets["p=0"] += 1
        elif p == 1:
            buckets["p=1"] += 1
        else:
            index = next(i for i, edge in enumerate(HISTOGRAM_EDGES[1:], start=1) if p <= edge)
            buckets[names[index]] += 1
    if not buckets["unverifiable"]:
        del buckets["unverifiable"]
    return buckets


def merge(out_dir: str | os.PathLike, allow_partial: bool = False) -> Path:
    """Join every shard's parts into `out_dir/profiles.parquet` (one row per query, in id order).

    Args:
        out_dir: the profiling output folder.
        allow_partial (`bool`): merge even when some shard has not finished (no `DONE.json`).

    Raises:
        FileNotFoundError: no shard folders in `out_dir`.
        ValueError: a shard is missing or unfinished, or an id appears twice.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    shards = sorted(p for p in out_dir.glob("shard-*-of-*") if p.is_dir())
    if not shards:
        raise FileNotFoundError(
            f"{out_dir} holds no profile shards (shard-*-of-*); run `sgpo-curate profile` first"
        )
    _check_shards_complete(shards, allow_partial)
    tables = [pq.read_table(part) for shard in shards for part in _parts(shard)]
    table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    ids = table.column("id").to_pylist() if table.num_rows else []
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        raise InputError(f"ids profiled twice across shards (were shards mixed?): {repeated[:5]}")
    if table.num_rows:
        table = table.sort_by("id")
    # One part's tampered count would read as the whole run's: the totals live in each shard's DONE.json.
    metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != TAMPERED_KEY}
    table = table.replace_schema_metadata(metadata or None)
    tmp = out_dir / (PROFILES_FILE + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out_dir / PROFILES_FILE)
    logger.info(
        "merged %d profiles from %d shard(s) into %s", table.num_rows, len(shards), out_dir / PROFILES_FILE
    )
    return out_dir / PROFILES_FILE


def _check_shards_complete(shards: list[Path], allow_partial: bool) -> None:
    counts = {int(p.name.rsplit("-", 1)[1]) for p in shards}
    if len(counts) != 1:
        raise InputError(f"shard folders disagree on the number of shards: {sorted(p.name for p in shards)}")
    expected = counts.pop()
    present = {int(p.name.split("-")[1]) for p in shards}
    problems = [f"shard {i} missing" for i in range(expected) if i not in present]
    problems += [f"{p.name} unfinished" for p in shards if not (p / "DONE.json").exists()]
    if problems and not allow_partial:
        raise InputError("cannot merge: " + "; ".join(problems) + " (finish them, or pass --allow-partial)")


# What curation and planning read of a profile: the query, the model and the verdicts. The completions
# (most of a profile's bytes: k texts per query) stay on disk; the raw config is copied from the file.
PROFILE_COLUMNS = (*QUERY_COLUMNS, "model", "rewards", "completion_tokens", "prompt_tokens")


def load_profiles(profile_dir: str | os.PathLike, completions: bool = False) -> list[QueryProfile]:
    """The merged profiles of a run folder (or a `profiles.parquet` path), without their completions.

    Only the columns curation needs are read (`PROFILE_COLUMNS`), column by column: 100,000 profiles of
    k = 8 load in seconds and a few hundred MB whatever the length of the sampled texts (README,
    Benchmarks). `write_curated(..., profiles=profile_dir)` copies the completions into the raw config
    straight from the file.

    Args:
        profile_dir: a profiling output folder, or its `profiles.parquet`.
        completions (`bool`): also read the sampled texts (`QueryProfile.completions`).

    Raises:
        FileNotFoundError: no profiles.parquet (the run was not merged).
    """
    import pyarrow.parquet as pq

    given = Path(profile_dir)
    if not given.exists():
        raise FileNotFoundError(
            f"no profiling folder or file at {given}: pass the --out folder of `sgpo-curate profile`"
        )
    path = given / PROFILES_FILE if given.is_dir() else given
    if not path.exists():
        raise FileNotFoundError(f"no {PROFILES_FILE} at {path}; run `sgpo-curate merge {path.parent}` first")
    wanted = [*PROFILE_COLUMNS, "completions"] if completions else list(PROFILE_COLUMNS)
    present = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[c for c in wanted if c in present])
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    return [
        QueryProfile.from_row({name: values[i] for name, values in columns.items()})
        for i in range(table.num_rows)
    ]


def load_run_info(profile_dir: str | os.PathLike) -> dict[str, Any]:
    """The `run.json` of a profiling folder (model, sampling, verifier, versions, date)."""
    path = Path(profile_dir) / RUN_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {RUN_FILE} in {profile_dir}: not a profiling output folder")
    info = json.loads(path.read_text())
    done = [json.loads(p.read_text()) for p in Path(profile_dir).glob("shard-*-of-*/DONE.json")]
    tampered = sum(int(d.get("tampered_samples", 0)) for d in done)
    if tampered or (done and info.get("verifier") == "code"):  # the card says 0 for code, nothing for math
        info["tampered_samples"] = tampered
    return info


def resolve_source(
    dataset: str, columns: dict[str, str] | None = None, domain: str | None = None, answer_format: str = "raw"
):
    """A registered source name, or a file / `hf:` dataset read through a column mapping."""
    from sgpo_curate.sources import get_source
    from sgpo_curate.sources.files import file_source, is_file_spec

    if is_file_spec(dataset):
        return file_source(dataset, columns, domain or "math", answer_format)
    if columns:
        raise InputError(
            "--columns applies to file or hf: datasets only; registered sources know their columns"
        )
    return get_source(dataset)


def profile_dataset(
    dataset: str,
    model: str,
    config: ProfileConfig,
    sampling: SamplingConfig | None = None,
    sampler: str = "transformers",
    verifier: str | None = None,
    prompt=None,
    columns: dict[str, str] | None = None,
    domain: str | None = None,
    answer_format: str = "raw",
    verifier_workers: int | None = None,
    verifier_timeout: float | None = None,
    math_extraction: str | None = None,
    engine: str | Engine = "local",
) -> ProfileSummary:
    """Profile a named or file dataset with a model: the whole `sgpo-curate profile` job.

    Args:
        dataset (`str`): a source from `sgpo-curate sources`, a local file/folder, or `hf:ORG/NAME`.
        model (`str`): bundled model name, local folder or Hub id.
        config (`ProfileConfig`): output folder, sharding, limit.
        sampling (`SamplingConfig`, *optional*): k and sampling parameters.
        sampler (`str`): `transformers` or `vllm` (GPU).
        verifier (`str`, *optional*): default: the source's domain (`math` or `code`).
        prompt (`PromptConfig`, *optional*): instruction templates.
        columns, domain, answer_format: for file and `hf:` datasets (see `sources.files`).
        verifier_workers (`int`, *optional*): verifier processes; default: number of cores (local
            engine), one per verifier actor (ray engine).
        verifier_timeout (`float`, *optional*): seconds per check; default: the verifier's own.
        math_extraction (`str`, *optional*): the math verifier's answer extraction, `strict` (default: TRL's
            `accuracy_reward`) or `lenient` (any last number); recorded in run.json and the card.
        engine (`str` or `Engine`): `"local"`, `"ray"`, or a configured `RayEngine(address=...)`.

    Example:
        >>> profile_dataset("mawps-singleop", "smollm2-135m-instruct",
        ...                 ProfileConfig(out_dir="runs/demo", limit=8), SamplingConfig(k=4))  # doctest: +SKIP
    """
    from sgpo_curate.config import PromptConfig
    from sgpo_curate.verifiers import get_verifier

    engine = get_engine(engine) if isinstance(engine, str) else engine
    source = resolve_source(dataset, columns, domain, answer_format)
    verifier_name = verifier or source.domain
    workers = verifier_workers if verifier_workers is not None else engine.default_verifier_workers
    options = {"workers": workers} | ({"timeout_s": verifier_timeout} if verifier_timeout else {})
    if math_extraction is not None:
        if verifier_name != "math":
            raise InputError(f"--math-extraction applies to the math verifier, not {verifier_name!r}")
        options["extraction"] = math_extraction
    # The first row is read before the model loads, so a wrong column mapping or instruction fails in
    # seconds, not after minutes of loading a large model.
    records = source.records(prompt or PromptConfig())
    first = next(records, None)
    records = itertools.chain([] if first is None else [first], records)
    verifier_obj = get_verifier(verifier_name, **options)
    sampler_obj = engine.make_sampler(sampler, model)
    try:
        return profile(
            records,
            sampler_obj,
            verifier_obj,
            config,
            sampling,
            source=source.name,
            source_license=source.license,
            engine=engine,
            source_hub_id=source.hub_id,
        )
    finally:
        close = getattr(verifier_obj, "close", None)
        if close:
            close()
