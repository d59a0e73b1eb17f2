"""`VerifierReward`: a project verifier as a TRL reward function.

Why its own module: the reward a trainer sees must be the reward profiling used (same verifier, same
settings), and it must not need the trainer (or torch) to be imported to be tested for that.
"""

from __future__ import annotations

from typing import Any

from sgpo_curate.records import Query, freeze_messages


class VerifierReward:
    """A TRL reward function made from a project verifier (`get_verifier("math")`, `"code"`, ...).

    TRL calls reward functions with the prompts, the completions and every other dataset column as lists;
    this rebuilds each rollout's `Query` from a curated dataset's columns (id, source, domain, answer,
    tests, entry_point) and returns the verifier's verdicts. `None` (cannot verify) becomes NaN in TRL:
    the rollout is unscorable and gets zero advantage.

    Example:
        >>> from sgpo_curate.verifiers import get_verifier  # doctest: +SKIP
        >>> trainer = AdaptiveGRPOTrainer(model, reward_funcs=VerifierReward(get_verifier("math")), ...)  # doctest: +SKIP
    """

    def __init__(self, verifier: Any):
        self.verifier = verifier
        self.__name__ = str(getattr(verifier, "name", type(verifier).__name__))

    def __call__(self, prompts: list, completions: list, **columns: Any) -> list[float | None]:
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        queries = []
        for i, prompt in enumerate(prompts):
            messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]

            def column(name: str, default: Any = None, index: int = i) -> Any:
                values = columns.get(name)
                return values[index] if values is not None else default

            queries.append(
                Query(
                    id=str(column("id", f"row/{column('sgpo_row_index', i)}")),
                    source=str(column("source", "train")),
                    domain=str(column("domain", "math")),
                    prompt=freeze_messages(messages),
                    answer=column("answer"),
                    tests=column("tests"),
                    entry_point=column("entry_point"),
                )
            )
        return self.verifier(texts, queries)
