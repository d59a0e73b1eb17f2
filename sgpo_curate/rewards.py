"""Rewards for training that equal the rewards profiling measured.

A published pass rate is only worth its name if the trainer's reward gives it back. Two things make
that hold here:

- One verifier, one set of settings. `VerifierReward` wraps the same verifier class profiling used;
  `VerifierReward.from_run_info(run_info)` rebuilds it with the settings recorded in `run.json` and
  the card (`verifier`, `verifier_settings`, e.g. the math extraction mode).
- Every input the verifier reads is published. `verifier_columns(query)` is the one place that turns a
  `Query` into the columns of a curated (and `-raw`) row, and `query_from_columns` turns them back:
  the gold `answer`, the `solution` text TRL's `accuracy_reward` reads (so TRL's own reward works on our
  datasets with no mapping), the unit `tests`, the `entry_point`, and the `code_prompt` a HumanEval-style
  completion continues (its imports, e.g. `from typing import List`, are part of the program).

Why its own module: it must not need the trainer (or torch) to be imported to be tested for that.

    reward = VerifierReward(get_verifier("math"))          # strict, as profiling's default
    trainer = AdaptiveGRPOTrainer(model, reward_funcs=reward, args=args, train_dataset=dataset)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sgpo_curate.records import Query, freeze_messages

# The columns a verifier reads back, besides the prompt; published in every curated and `-raw` row.
VERIFIER_COLUMNS = ("id", "source", "domain", "answer", "solution", "tests", "entry_point", "code_prompt")


def verifier_columns(query: Query) -> dict[str, Any]:
    """What a verifier needs to re-check answers to `query`, as published columns (`VERIFIER_COLUMNS`).

    Example:
        >>> q = Query("arithmetic/0", "arithmetic", "math", (("user", "1+2?"),), answer="3")
        >>> verifier_columns(q)["solution"]
        '$3$'
    """
    from sgpo_curate.verifiers.code import function_stub
    from sgpo_curate.verifiers.math import solution_text

    is_math = query.domain == "math"
    return {
        "id": query.id,
        "source": query.source,
        "domain": query.domain,
        "answer": query.answer,
        "solution": solution_text(query.answer) if is_math and query.answer else None,
        "tests": query.tests,
        "entry_point": query.entry_point,
        "code_prompt": None if is_math else function_stub(query),
    }


def query_from_columns(prompt: Any, columns: Mapping[str, Any], default_id: str = "row") -> Query:
    """The `Query` a verifier needs, rebuilt from one published row (`verifier_columns` reversed).

    Args:
        prompt: the row's `prompt` (chat messages, or plain text).
        columns (`Mapping`): the row's other columns; missing ones default (domain `math`, no tests).
        default_id (`str`): the id when the row has none.
    """
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
    code_prompt = columns.get("code_prompt")
    return Query(
        id=str(columns.get("id") or default_id),
        source=str(columns.get("source") or "train"),
        domain=str(columns.get("domain") or "math"),
        prompt=freeze_messages(messages),
        # A TRL-style dataset may carry only `solution`; the math verifier reads `$...$` as it is.
        answer=columns.get("answer") or columns.get("solution"),
        tests=columns.get("tests"),
        entry_point=columns.get("entry_point"),
        metadata={"code_prompt": code_prompt} if code_prompt else {},
    )


class VerifierReward:
    """A TRL reward function made from a project verifier (`get_verifier("math")`, `"code"`, ...).

    TRL calls reward functions with the prompts, the completions and every other dataset column as lists;
    this rebuilds each rollout's `Query` from a curated dataset's columns (`VERIFIER_COLUMNS`) and returns
    the verifier's verdicts. `None` (cannot verify) becomes NaN in TRL: the rollout is unscorable and gets
    zero advantage. Picklable when its verifier is.

    Args:
        verifier: a verifier (`verifier(completions, queries) -> list[float | None]`).

    Example:
        >>> from sgpo_curate.verifiers import get_verifier  # doctest: +SKIP
        >>> reward = VerifierReward(get_verifier("math", extraction="strict"))  # doctest: +SKIP
        >>> trainer = AdaptiveGRPOTrainer(model, reward_funcs=reward, ...)  # doctest: +SKIP
    """

    def __init__(self, verifier: Any):
        self.verifier = verifier
        self.__name__ = str(getattr(verifier, "name", type(verifier).__name__))

    @classmethod
    def from_run_info(cls, run_info: Mapping[str, Any], **options: Any) -> VerifierReward:
        """The reward a profile was scored with: its verifier and settings as `run.json` (or a card's
        `sgpo_profiles` entry) records them.

        Args:
            run_info (`Mapping`): has `verifier` and, when the verifier has any, `verifier_settings`.
            **options: resources that do not change verdicts (e.g. `workers=4`).

        Example:
            >>> reward = VerifierReward.from_run_info(load_run_info("runs/p"))  # doctest: +SKIP
        """
        from sgpo_curate.verifiers import get_verifier

        settings = dict(run_info.get("verifier_settings") or {})
        return cls(get_verifier(str(run_info["verifier"]), **settings, **options))

    def __call__(self, prompts: list, completions: list, **columns: Any) -> list[float | None]:
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        queries = []
        for i, prompt in enumerate(prompts):
            row = {name: values[i] for name, values in columns.items() if isinstance(values, list)}
            queries.append(query_from_columns(prompt, row, default_id=f"row/{row.get('sgpo_row_index', i)}"))
        return self.verifier(texts, queries)
