"""Plan a training run before paying for it: what each group-size rule and budget buys on a profiled pool.

What: `simulate(counts, arms)` takes a pool's profile counts (num_correct, num_samples per query) and, for
each arm (a `CurateConfig`: filtering, rule, group-size bounds, plain GRPO's G as the budget), curates the
pool exactly as `curate` would, then predicts per epoch: rollouts, the share of groups and of rollouts with
zero advantage (all rewards equal), the informative groups, and the expected gradient signal,
(G - 1)·E[p(1-p)] per group, i.e. (1 - 1/G)·E[p(1-p)] per rollout (`policy.group_signal`), with
expectations over each query's posterior of p. `scale` resamples the pool to N queries (with replacement,
seeded) to plan a large run from a small profile.

Why: a GRPO group whose rewards are all equal has zero advantage; which queries get rollouts (through
p(1-p)) decides how much signal a rollout carries. Both follow from the profile alone, before training.
What it cannot see: the policy changes as it trains (pass rates move, mostly in the middle), so the
predictions hold for the start of training and degrade with how far it moves.

The posterior of each query's p comes from a prior: `flat` (Beta(1, 1), what curation and the planner use)
or `fitted` (a `BetaMixture` fitted to the pool itself, which knows, for example, that 0 of 8 in a pool
full of never-solved queries means p near 0).

Pure: counts in, numbers out; `load_counts` and `plot_simulation` are the IO edges.

Example:
    >>> sim = simulate([("a", 1, 8), ("b", 8, 8), ("c", 0, 8), ("d", 4, 8)], default_arms())
    >>> [a.arm for a in sim.arms][:3]
    ['grpo', 'filter', 'inverse']
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sgpo_curate.curation import CurateConfig, curate
from sgpo_curate.dataset_folder import DatasetFolder
from sgpo_curate.errors import InputError
from sgpo_curate.policy import BetaMixture, group_signal, zero_advantage_probability
from sgpo_curate.records import Query, QueryProfile

PRIORS = ("flat", "fitted")
RULES = ("inverse", "symmetric", "coverage", "knapsack")
SIMULATION_FILE = "simulation.json"
PLOT_FILE = "simulation.png"

Counts = tuple[str, int, int]
"""(id, num_correct, num_samples) of one profiled query."""


@dataclass(frozen=True)
class SimulateConfig:
    """What `sgpo-curate simulate` plans: the arms, the prior and the scale."""

    group_sizes: tuple[int, ...] = field(
        default=(8,), metadata={"help": "Plain GRPO's G per set of arms (the budget); one set per value."}
    )
    rules: tuple[str, ...] = field(
        default=RULES, metadata={"help": "Group-size rules planned with filtering, besides grpo and filter."}
    )
    g_min: int = field(default=2, metadata={"help": "Smallest group size of the rules."})
    g_max: int = field(default=16, metadata={"help": "Largest group size of the rules."})
    unsolvable_keep_fraction: float = field(
        default=0.25, metadata={"help": "Share of unsolvable queries the filter keeps."}
    )
    prior: str = field(
        default="fitted",
        metadata={
            "help": "Posterior of each query's p: fitted (a mixture fitted to the pool) or flat (Beta(1,1))."
        },
    )
    scale: int | None = field(
        default=None, metadata={"help": "Resample the pool to N queries to plan a large run."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the resampling."})

    def __post_init__(self) -> None:
        if not self.group_sizes or any(g < 1 for g in self.group_sizes):
            raise ValueError(f"SimulateConfig.group_sizes must be positive, got {self.group_sizes}")
        if self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r}; valid priors: {', '.join(PRIORS)}")
        if self.scale is not None and self.scale < 1:
            raise ValueError(f"SimulateConfig.scale must be >= 1, got {self.scale}")

    def arms(self) -> list[Arm]:
        return default_arms(
            self.group_sizes, self.rules, self.g_min, self.g_max, self.unsolvable_keep_fraction
        )


def simulate_pool(
    path: str | os.PathLike,
    config: SimulateConfig | None = None,
    config_name: str | None = None,
    out_dir: str | os.PathLike | None = None,
) -> tuple[Simulation, Path]:
    """The whole `sgpo-curate simulate` job: load a pool's counts, simulate every arm, write the results.

    Args:
        path: a profiling folder, a profiles.parquet, or a curated dataset folder.
        config (`SimulateConfig`, *optional*): arms, prior, scale.
        config_name (`str`, *optional*): the config of a curated folder holding several.
        out_dir (*optional*): where `simulation.json` and `simulation.png` go; default `<path>/simulation`.

    Example:
        >>> sim, out = simulate_pool("runs/p", SimulateConfig(group_sizes=(4, 8), scale=100_000))  # doctest: +SKIP
    """
    config = config or SimulateConfig()
    counts = load_counts(path, config_name)
    sim = simulate(counts, config.arms(), prior=config.prior, scale=config.scale, seed=config.seed)
    out = Path(out_dir) if out_dir else Path(path).with_suffix("") / "simulation"
    write_simulation(sim, out)
    return sim, out


@dataclass(frozen=True)
class Arm:
    """One way to spend rollouts: a name and the curation that sets its queries and group sizes."""

    name: str
    config: CurateConfig


def default_arms(
    group_sizes: Sequence[int] = (8,),
    rules: Sequence[str] = RULES,
    g_min: int = 2,
    g_max: int = 16,
    unsolvable_keep_fraction: float = 0.25,
) -> list[Arm]:
    """Plain GRPO, filter only, and each rule with filtering, at every plain-GRPO group size (the budget).

    At group size G: `grpo` is G for every profiled query; `filter` drops trivial and most unsolvable
    queries and keeps G; a rule sizes each kept query's group (`knapsack` splits G x kept queries).
    Names carry `-G<n>` when more than one group size is planned.

    Example:
        >>> [a.name for a in default_arms((4, 8), rules=("inverse",))]
        ['grpo-G4', 'filter-G4', 'inverse-G4', 'grpo-G8', 'filter-G8', 'inverse-G8']
    """
    arms = []
    for size in group_sizes:
        suffix = f"-G{size}" if len(group_sizes) > 1 else ""
        base = CurateConfig(
            rule="uniform",
            g_min=g_min,
            g_max=max(g_max, size),
            uniform_group_size=size,
            unsolvable_keep_fraction=unsolvable_keep_fraction,
        )
        arms.append(Arm(f"grpo{suffix}", replace(base, filter=False)))
        arms.append(Arm(f"filter{suffix}", base))
        arms += [Arm(f"{rule}{suffix}", replace(base, rule=rule)) for rule in rules]
    return arms


@dataclass(frozen=True)
class ArmPrediction:
    """What one arm should see per epoch, before training moves the pass rates.

    Args:
        arm (`str`): the arm's name.
        queries (`int`): queries it trains on.
        rollouts (`int`): rollouts per epoch (sum of group sizes).
        informative_groups (`float`): expected groups whose rewards differ.
        zero_advantage_groups (`float`): expected share of groups with all rewards equal.
        zero_advantage_rollouts (`float`): expected share of rollouts in such groups.
        signal (`float`): expected gradient signal per epoch, sum over groups of (G - 1)·E[p(1-p)].
        signal_per_rollout (`float`): `signal / rollouts`.
        rollouts_vs_baseline (`float`): rollouts over the first arm's (plain GRPO).
        signal_per_rollout_vs_baseline (`float`): signal per rollout over the first arm's.
    """

    arm: str
    queries: int
    rollouts: int
    informative_groups: float
    zero_advantage_groups: float
    zero_advantage_rollouts: float
    signal: float
    signal_per_rollout: float
    rollouts_vs_baseline: float = math.nan
    signal_per_rollout_vs_baseline: float = math.nan


@dataclass(frozen=True)
class Simulation:
    """Predictions for every arm on one pool.

    Args:
        pool (`int`): profiled queries given.
        queries (`int`): queries planned (the pool, or `scale` resampled ones).
        prior (`str`): `flat` or `fitted`.
        arms (`list[ArmPrediction]`): one per arm, the baseline (plain GRPO) first.
        configs (`dict[str, dict]`): each arm's curation settings.
    """

    pool: int
    queries: int
    prior: str
    arms: list[ArmPrediction]
    configs: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "queries": self.queries,
            "prior": self.prior,
            "arms": [_finite(asdict(a)) for a in self.arms],
            "configs": self.configs,
        }

    def table(self, rollouts_per_step: int | None = None) -> str:
        """A markdown table of the predictions (steps per epoch when `rollouts_per_step` is given)."""
        header = ["arm", "queries", "rollouts/epoch", "vs grpo", "zero-adv groups", "zero-adv rollouts"]
        header += ["informative groups", "signal/rollout", "vs grpo"]
        header += ["steps/epoch"] if rollouts_per_step else []
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for a in self.arms:
            cells = [
                a.arm,
                str(a.queries),
                f"{a.rollouts:,}",
                f"{a.rollouts_vs_baseline:.2f}",
                f"{a.zero_advantage_groups:.3f}",
                f"{a.zero_advantage_rollouts:.3f}",
                f"{a.informative_groups:,.1f}",
                f"{a.signal_per_rollout:.4f}",
                f"{a.signal_per_rollout_vs_baseline:.2f}",
            ]
            if rollouts_per_step:
                cells.append(f"{a.rollouts / rollouts_per_step:,.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def simulate(
    counts: Sequence[Counts],
    arms: Sequence[Arm],
    prior: str = "fitted",
    scale: int | None = None,
    seed: int = 0,
) -> Simulation:
    """Predict rollouts, zero-advantage shares and signal per epoch for each arm on a profiled pool.

    Args:
        counts (`Sequence[Counts]`): (id, num_correct, num_samples) per profiled query (`load_counts`).
        arms (`Sequence[Arm]`): what to compare (`default_arms()`); the first is the baseline.
        prior (`str`): `fitted` (a `BetaMixture` fitted to the pool) or `flat` (Beta(1, 1)).
        scale (`int`, *optional*): resample the pool to this many queries (seeded, with replacement).
        seed (`int`): seed of the resampling.

    Example:
        >>> sim = simulate([("a", 1, 8), ("b", 8, 8), ("c", 4, 8)], default_arms(rules=()), prior="flat")
        >>> [a.queries for a in sim.arms]
        [3, 2]
    """
    if not arms:
        raise ValueError("simulate needs at least one arm")
    if prior not in PRIORS:
        raise ValueError(f"unknown prior {prior!r}; valid priors: {', '.join(PRIORS)}")
    pool = [c for c in counts if c[2] > 0]
    if not pool:
        raise InputError("the pool has no query with verified samples")
    planned = resample(pool, scale, seed) if scale else pool
    belief = BetaMixture.fit([(c, n) for _, c, n in pool]) if prior == "fitted" else BetaMixture.flat()
    profiles = _profiles(planned)
    predictions = [_predict(arm, profiles, belief) for arm in arms]
    base = predictions[0]
    predictions = [
        replace(
            p,
            rollouts_vs_baseline=_ratio(p.rollouts, base.rollouts),
            signal_per_rollout_vs_baseline=_ratio(p.signal_per_rollout, base.signal_per_rollout),
        )
        for p in predictions
    ]
    return Simulation(
        pool=len(pool),
        queries=len(planned),
        prior=prior,
        arms=predictions,
        configs={arm.name: asdict(arm.config) for arm in arms},
    )


def resample(counts: Sequence[Counts], size: int, seed: int = 0) -> list[Counts]:
    """`size` queries drawn with replacement from `counts`, each under a new id (`<id>#<draw>`).

    Example:
        >>> len(resample([("a", 1, 8), ("b", 2, 8)], 5))
        5
    """
    if size < 1:
        raise ValueError(f"scale must be >= 1, got {size}")
    rng = random.Random(f"resample-{seed}")
    return [(f"{qid}#{i}", c, n) for i, (qid, c, n) in enumerate(rng.choices(counts, k=size))]


def _predict(arm: Arm, profiles: list[QueryProfile], belief: BetaMixture) -> ArmPrediction:
    kept = curate(profiles, arm.config).dataset.with_format("arrow")[:]
    correct = kept["num_correct"].to_pylist()
    samples = kept["num_samples"].to_pylist()
    sizes = kept["group_size"].to_pylist()
    posteriors: dict[tuple[int, int], BetaMixture] = {}
    zero = signal = weighted_zero = 0.0
    for c, n, g in zip(correct, samples, sizes, strict=True):
        post = posteriors.setdefault((c, n), belief.posterior(c, n))  # pools repeat counts: compute once each
        z = post.expect(lambda a, b, g=g: zero_advantage_probability(a, b, g))
        zero += z
        weighted_zero += g * z
        signal += post.expect(lambda a, b, g=g: group_signal(a, b, g))
    rollouts = int(sum(sizes))
    groups = len(sizes)
    return ArmPrediction(
        arm=arm.name,
        queries=groups,
        rollouts=rollouts,
        informative_groups=groups - zero,
        zero_advantage_groups=_ratio(zero, groups),
        zero_advantage_rollouts=_ratio(weighted_zero, rollouts),
        signal=signal,
        signal_per_rollout=_ratio(signal, rollouts),
    )


def _profiles(counts: Sequence[Counts]) -> list[QueryProfile]:
    """Stand-in profiles with the given counts (curation reads only ids and rewards)."""
    prompt = (("user", ""),)
    return [
        QueryProfile(
            query=Query(id=qid, source="simulated", domain="math", prompt=prompt),
            model="simulated",
            rewards=(1.0,) * c + (0.0,) * (n - c),
            completion_tokens=(0,) * n,
            prompt_tokens=0,
        )
        for qid, c, n in counts
    ]


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}


# --------------------------------------------------------------------------- IO edges


def load_counts(path: str | os.PathLike, config_name: str | None = None) -> list[Counts]:
    """(id, num_correct, num_samples) of every profiled query in a profiling folder, a profiles.parquet,
    or a curated dataset folder (its `<config>-raw` rows when written, else the curated rows).

    Args:
        path: a profiling output folder, a parquet file, or a folder written by `sgpo-curate curate`.
        config_name (`str`, *optional*): the config of a curated folder holding several.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_file():
        files = [path]
    elif (path / "profiles.parquet").exists():
        files = [path / "profiles.parquet"]
    else:
        files = _curated_files(DatasetFolder(path), config_name)
    columns = ["id", "num_correct", "num_samples"]
    rows = [row for f in files for row in pq.read_table(f, columns=columns).to_pylist()]
    return [(str(r["id"]), int(r["num_correct"]), int(r["num_samples"])) for r in rows]


def _curated_files(folder: DatasetFolder, config_name: str | None) -> list[Path]:
    names = folder.config_names()
    if not names:
        raise FileNotFoundError(
            f"{folder.root} is neither a profiling folder (profiles.parquet) nor a curated dataset folder "
            "(curation/*.json)"
        )
    if config_name is None and len(names) > 1:
        raise InputError(f"{folder.root} holds configs {', '.join(names)}: name one with --config-name")
    if config_name is not None and config_name not in names:
        raise InputError(f"{folder.root} has no config {config_name!r}; configs: {', '.join(names)}")
    return folder.profile_files(config_name or names[0])


def write_simulation(sim: Simulation, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write `simulation.json` and `simulation.png` into `out_dir`; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / SIMULATION_FILE
    data.write_text(json.dumps(sim.to_dict(), indent=2) + "\n", encoding="utf-8")
    plot = out_dir / PLOT_FILE
    plot_simulation(sim, plot)
    return data, plot


def plot_simulation(sim: Simulation, path: str | os.PathLike) -> Path:
    """Two panels per arm: rollouts per epoch (with the expected zero-advantage part) and signal per rollout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    names = [a.arm for a in sim.arms]
    positions = range(len(names))
    left.bar(positions, [a.rollouts for a in sim.arms], color="#1f77b4", label="rollouts per epoch")
    left.bar(
        positions,
        [a.rollouts * a.zero_advantage_rollouts for a in sim.arms],
        color="#bbbbbb",
        label="in zero-advantage groups (expected)",
    )
    right.bar(positions, [a.signal_per_rollout_vs_baseline for a in sim.arms], color="#2ca02c")
    right.axhline(1.0, color="black", linewidth=0.8)
    for ax, title in ((left, "rollouts per epoch"), (right, f"signal per rollout vs {names[0]}")):
        ax.set_xticks(list(positions), names, rotation=45, ha="right")
        ax.set_title(title)
    left.legend(fontsize=8)
    fig.suptitle(f"{sim.queries} queries, {sim.prior} prior")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    return Path(path)
