"""The whole job in one call: profile a dataset with a model, curate the profiles, write the dataset
(parquet + card + plots) locally and, when asked, publish it to the Hub.

`sgpo-curate quickstart` runs this on an embedded default that needs no network: the bundled
SmolLM2-135M-Instruct on 32 generated arithmetic word problems in graded levels (`sources/synthetic.py`),
k=4 at temperature 0.5, each problem after one worked example that ends in "The final answer is
\\boxed{5}.", scored by the strict math reward (TRL's `accuracy_reward`). `benchmarks/bench_quickstart_prompts.py`
measured the candidates and keeps the numbers (`benchmarks/results/quickstart_prompts.md`): without the
worked example this model solves nothing under that reward, on these problems or on MAWPS; with it, a
third to a half of the queries land strictly between 0 and 1. The
generated levels make the difficulty explicit (one operation is often solved, three almost never);
`--dataset mawps-singleop` (or any source) is one flag away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgpo_curate.config import ProfileConfig, PromptConfig, SamplingConfig

if TYPE_CHECKING:
    from sgpo_curate.curation import CurateConfig, CuratedFiles, CurationResult
    from sgpo_curate.hub import PublishResult
    from sgpo_curate.profiling import ProfileSummary

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_DATASET = "arithmetic"
# Chosen by measurement (benchmarks/bench_quickstart_prompts.py): SmolLM2-135M-Instruct follows this worked
# example's format, and at temperature 0.5 its pass rates spread across (0, 1) under the strict reward.
QUICKSTART_EXAMPLE = (
    "Ben has 2 pencils. He finds 3 more pencils. How many pencils does Ben have now?",
    "Ben starts with 2 pencils. He finds 3 more: 2 + 3 = 5. The final answer is \\boxed{5}.",
)
QUICKSTART_PROMPT = PromptConfig(math_examples=(QUICKSTART_EXAMPLE,))
DEFAULT_LIMIT = 32
DEFAULT_SAMPLING = SamplingConfig(k=4, max_new_tokens=128, temperature=0.5, batch_queries=8)


@dataclass
class PipelineResult:
    """What each stage produced."""

    profile_summary: ProfileSummary
    curation: CurationResult
    files: CuratedFiles
    published: PublishResult | None = None
    run_info: dict[str, Any] | None = None

    def reward_line(self) -> str:
        """Which reward produced the pass rates (the card says it too)."""
        run = self.run_info or {}
        settings = ", ".join(f"{k}={v}" for k, v in sorted((run.get("verifier_settings") or {}).items()))
        strict = run.get("verifier") == "math" and "extraction=strict" in settings
        return (
            f"reward: verifier {run.get('verifier')!r}"
            + (f" ({settings})" if settings else "")
            + (
                ", the same verdicts as trl.rewards.accuracy_reward on the `solution` column"
                if strict
                else ""
            )
        )


def run_pipeline(
    out_dir: str | Path,
    dataset: str = DEFAULT_DATASET,
    model: str = DEFAULT_MODEL,
    limit: int | None = DEFAULT_LIMIT,
    sampling: SamplingConfig = DEFAULT_SAMPLING,
    curate_config: CurateConfig | None = None,
    push_to_hub: str | None = None,
    progress: bool = True,
    prompt: PromptConfig = QUICKSTART_PROMPT,
    math_extraction: str | None = None,
) -> PipelineResult:
    """Profile -> curate -> write locally (-> publish). Resumable: rerun to finish an interrupted run.

    Args:
        out_dir (`str` or `Path`): run folder; profiles go to `OUT/profiles`, the dataset to `OUT/dataset`.
        dataset (`str`): a registered source or a file (see `sgpo-curate sources`).
        model (`str`): bundled model name, local folder or Hub id.
        limit (`int`, *optional*): first N queries.
        sampling (`SamplingConfig`): k and sampling parameters.
        curate_config (`CurateConfig`, *optional*): the curation policy; default: the paper's.
        push_to_hub (`str`, *optional*): `ORG/NAME` to publish the dataset to.
        progress (`bool`): show the profiling progress bar.
        prompt (`PromptConfig`): how problems become chat messages; default: the default instruction after a
            worked example that ends in "The final answer is \\boxed{4}.".
        math_extraction (`str`, *optional*): `strict` (default, TRL's `accuracy_reward`) or `lenient`.

    Example:
        >>> result = run_pipeline("runs/quickstart")  # doctest: +SKIP
        >>> result.files.card  # doctest: +SKIP
        PosixPath('runs/quickstart/dataset/README.md')
    """
    from sgpo_curate.curation import curate, write_curated
    from sgpo_curate.profiling import load_profiles, load_run_info, profile_dataset

    out_dir = Path(out_dir)
    profile_dir = out_dir / "profiles"
    summary = profile_dataset(
        dataset,
        model,
        ProfileConfig(out_dir=str(profile_dir), limit=limit, progress=progress),
        sampling,
        prompt=prompt,
        math_extraction=math_extraction,
    )
    result = curate(load_profiles(profile_dir), curate_config)
    run_info = load_run_info(profile_dir)
    files = write_curated(result, out_dir / "dataset", run_info, profiles=profile_dir)
    published = None
    if push_to_hub:
        from sgpo_curate.hub import publish

        published = publish(out_dir / "dataset", push_to_hub, config_name=result.config_name)
    return PipelineResult(summary, result, files, published, run_info)
