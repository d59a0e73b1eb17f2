"""Config dataclasses, one per stage. Every field carries `help`; constraints are checked on creation.

The CLI builds its flags from these, so a field's help text is also its `--help` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROBLEM_FIELD = "{problem}"
DEFAULT_MATH_INSTRUCTION = (
    "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{}."
)
DEFAULT_CODE_INSTRUCTION = (
    "{problem}\n\nWrite a self-contained Python solution in a single ```python code block."
)


def fill_template(template: str, problem: str) -> str:
    """`template` with every `{problem}` replaced by `problem`; any other brace is left as written.

    Not `str.format`: instructions often hold literal braces (`\\boxed{N}`, a LaTeX or JSON example).

    Example:
        >>> fill_template('{problem} Reply as {"answer": N}.', "1+1?")
        '1+1? Reply as {"answer": N}.'
    """
    return template.replace(PROBLEM_FIELD, problem)


@dataclass(frozen=True)
class PromptConfig:
    """How a source row becomes the chat messages the policy sees.

    Args:
        math_instruction (`str`): user-message template for math; `{problem}` marks the problem text.
        code_instruction (`str`): the same for code.
        system_prompt (`str`, *optional*): a system message put first.
        math_examples (`tuple[tuple[str, str], ...]`): worked (problem, answer) pairs shown before a math
            problem as earlier chat turns (user: the problem in `math_instruction`, assistant: the answer),
            so a small model sees the answer format it is scored on.
    """

    math_instruction: str = field(
        default=DEFAULT_MATH_INSTRUCTION,
        metadata={
            "help": "User-message template for math problems; `{problem}` is replaced by the problem text "
            "(other braces are kept as written)."
        },
    )
    code_instruction: str = field(
        default=DEFAULT_CODE_INSTRUCTION,
        metadata={
            "help": "User-message template for code problems; `{problem}` is replaced by the problem text "
            "(other braces are kept as written)."
        },
    )
    system_prompt: str | None = field(
        default=None, metadata={"help": "Optional system message put before the user message."}
    )
    math_examples: tuple[tuple[str, str], ...] = field(
        default=(),
        metadata={
            "help": "Worked (problem, answer) pairs shown as earlier chat turns before each math problem."
        },
    )

    def __post_init__(self) -> None:
        for name in ("math_instruction", "code_instruction"):
            template = getattr(self, name)
            if PROBLEM_FIELD not in template:
                raise ValueError(
                    f"the {name.split('_')[0]} instruction {template!r} has no {PROBLEM_FIELD}: write "
                    f"{PROBLEM_FIELD} where the problem text goes, e.g. '{PROBLEM_FIELD}\\n\\nAnswer briefly.'"
                )
        for example in self.math_examples:
            if len(example) != 2 or not all(isinstance(part, str) and part.strip() for part in example):
                raise ValueError(
                    f"PromptConfig.math_examples holds (problem, answer) text pairs, got {example!r}"
                )

    def messages(self, domain: str, problem: str) -> tuple[tuple[str, str], ...]:
        template = self.math_instruction if domain == "math" else self.code_instruction
        turns: list[tuple[str, str]] = [("system", self.system_prompt)] if self.system_prompt else []
        for example, answer in self.math_examples if domain == "math" else ():
            turns += [("user", fill_template(template, example)), ("assistant", answer)]
        turns.append(("user", fill_template(template, problem)))
        return tuple(turns)


@dataclass(frozen=True)
class SamplingConfig:
    """How answers are sampled under the initial policy."""

    k: int = field(default=8, metadata={"help": "Samples per query (the paper's k)."})
    max_new_tokens: int = field(default=256, metadata={"help": "Maximum generated tokens per sample."})
    temperature: float = field(
        default=1.0,
        metadata={"help": "Sampling temperature; 0 = greedy decoding (all k samples of a query the same)."},
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass in (0, 1]."})
    seed: int = field(default=0, metadata={"help": "Base seed; the same seed gives the same profiles."})
    first_sample: int = field(
        default=0,
        metadata={
            "help": "Number of each query's first sample: a call draws samples first_sample .. first_sample+k-1, "
            "each from its own seeded stream (so k=8 with first_sample=8 extends a k=8 profile to 16)."
        },
    )
    batch_queries: int = field(
        default=8,
        metadata={"help": "Queries per generate call (each with k samples, so batch_queries*k sequences)."},
    )

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"SamplingConfig.k must be >= 1, got {self.k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingConfig.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"SamplingConfig.temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingConfig.top_p must be in (0, 1], got {self.top_p}")
        if self.batch_queries < 1:
            raise ValueError(f"SamplingConfig.batch_queries must be >= 1, got {self.batch_queries}")
        if self.first_sample < 0:
            raise ValueError(f"SamplingConfig.first_sample must be >= 0, got {self.first_sample}")


@dataclass(frozen=True)
class AdaptiveConfig:
    """Adaptive profiling: sample each query in rounds and stop once its decisions are settled.

    A query is sampled up to `SamplingConfig.k` times (k_max), checked after each round's cumulative count
    (2, 4, 6, ... by default). It stops when, under the prior updated by its rewards so far, the decisions
    curation takes from it (trivial, unsolvable, or its group size under `rule`) would come out the same
    after all k_max samples with probability at least `confidence`.
    """

    confidence: float = field(
        default=0.95,
        metadata={
            "help": "Stop a query once its decisions would match k_max samples' with this posterior probability."
        },
    )
    rounds: tuple[int, ...] = field(
        default=(),
        metadata={
            "help": "Cumulative samples per query at which to check (k_max is always last); empty: every 2 (2, 4, 6, ...)."
        },
    )
    prior: str = field(
        default="flat",
        metadata={
            "help": "Prior of each query's pass rate: flat (Beta(1,1)), or a profiling folder (or profiles.parquet) "
            "of a pilot run whose pool-level distribution is fitted (many p=0 queries make failures say more)."
        },
    )
    rule: str = field(
        default="inverse",
        metadata={
            "help": "Group-size rule whose decision must be settled (as in curate); a budgeted rule settles only trivial/unsolvable."
        },
    )
    g_min: int = field(default=2, metadata={"help": "Smallest group size of the rule (as in curate)."})
    g_max: int = field(default=16, metadata={"help": "Largest group size of the rule (as in curate)."})

    def __post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise ValueError(f"AdaptiveConfig.confidence must be in (0, 1), got {self.confidence}")
        rounds = tuple(int(r) for r in self.rounds)
        if any(r < 1 for r in rounds) or list(rounds) != sorted(set(rounds)):
            raise ValueError(
                f"AdaptiveConfig.rounds must be increasing positive sample counts, got {self.rounds}"
            )
        object.__setattr__(self, "rounds", rounds)
        if not 1 <= self.g_min <= self.g_max:
            raise ValueError(f"AdaptiveConfig needs 1 <= g_min <= g_max, got {self.g_min}, {self.g_max}")

    def schedule(self, k: int) -> tuple[int, ...]:
        """Cumulative samples per query after each round, ending at k.

        Example:
            >>> AdaptiveConfig().schedule(8), AdaptiveConfig(rounds=(2, 4, 8)).schedule(16)
            ((2, 4, 6, 8), (2, 4, 8, 16))
        """
        # Every 2 samples by default: on the measured pools it saved up to 35 points more than doubling
        # (2, 4, 8, ...) at the same agreement; each round costs one more prefill of the open prompts.
        points = self.rounds or tuple(range(2, k, 2))
        return tuple(r for r in points if r < k) + (k,)


@dataclass(frozen=True)
class ProfileConfig:
    """Where and how profiles are written."""

    out_dir: str = field(metadata={"help": "Directory for profile shards, rejects and the summary."})
    shard_index: int = field(default=0, metadata={"help": "This worker's shard (0-based)."})
    num_shards: int = field(
        default=1, metadata={"help": "Total number of workers; queries are split by id hash."}
    )
    limit: int | None = field(
        default=None, metadata={"help": "Profile only the first N queries of the source."}
    )
    keep_completions: bool = field(
        default=True, metadata={"help": "Store raw completions in the profiles (for the `raw` config)."}
    )
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    adaptive: AdaptiveConfig | None = field(
        default=None,
        metadata={
            "help": "Sample in rounds and stop each query once its decisions are settled (None: k each)."
        },
    )

    def __post_init__(self) -> None:
        if self.num_shards < 1:
            raise ValueError(f"ProfileConfig.num_shards must be >= 1, got {self.num_shards}")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(
                f"ProfileConfig.shard_index must be in [0, {self.num_shards}), got {self.shard_index}"
            )
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"ProfileConfig.limit must be >= 1, got {self.limit}")
