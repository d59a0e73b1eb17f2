"""Train a real model on a curated dataset on GPUs: AdaptiveGRPOTrainer with vLLM in colocate mode.

GPU only (vLLM wheels hold CUDA kernels only); not run in CI. Written for Qwen2.5-0.5B-Instruct on a
GSM8K config curated by `sgpo-curate` for that model, but any causal LM and any curated config work.

Steps:
 1. Load the curated config (a Hub id or the folder `sgpo-curate curate` wrote); rows are already in
    curriculum order and carry `group_size`.
 2. Reward: the project's math verifier (math-verify) wrapped by `VerifierReward`.
 3. Train with `AdaptiveGRPOTrainer`: `use_vllm=True, vllm_mode="colocate"` (each process owns a vLLM
    engine and generates one completion per repeated row, so per-query group sizes work; server mode
    assumes a fixed group size and is refused), `shuffle_dataset=False` (keep the curriculum).
 4. `output_dir/compute_summary.json` holds the per-step and total FLOPs; pass the profiling FLOPs from
    the dataset card (`--prior-flops`) to charge them to this run.

Run (one node, 8 GPUs; `pip install 'sgpo-curate[train,vllm]'`):

    accelerate launch --num_processes 8 examples/train_vllm_colocate.py \\
        --model Qwen/Qwen2.5-0.5B-Instruct --dataset ORG/gsm8k-sgpo --config qwen2.5-0.5b-instruct \\
        --output-dir runs/qwen-gsm8k-sgpo

and the plain-GRPO baseline through the same code: add `--uniform` (G = --num-generations for every row,
shuffled; use the unfiltered profiled pool as --dataset for a like-for-like comparison).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="Qwen/Qwen2.5-0.5B-Instruct")
    parser.add_argument("--dataset", required=True, help="Hub id or local folder of a curated dataset")
    parser.add_argument("--config", default=None, help="dataset config (one per profiled model)")
    parser.add_argument("--output-dir", default="runs/sgpo-vllm")
    parser.add_argument("--uniform", action="store_true", help="plain GRPO: one G for all rows, shuffled")
    parser.add_argument("--num-generations", type=int, default=8, help="G of rows without a group size")
    parser.add_argument("--max-group-size", type=int, default=16)
    parser.add_argument("--per-device-batch", type=int, default=16, help="rollouts per GPU per micro-step")
    parser.add_argument("--grad-accum", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-6)
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--max-completion-length", type=int, default=1024)
    parser.add_argument(
        "--prior-flops", type=float, default=0.0, help="profiling FLOPs to charge to this run"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from datasets import load_dataset

    from sgpo_curate import AdaptiveGRPOConfig, AdaptiveGRPOTrainer, get_verifier
    from sgpo_curate.rewards import VerifierReward

    args = parse_args(argv)
    dataset = load_dataset(args.dataset, args.config, split="train")
    config = AdaptiveGRPOConfig(
        output_dir=args.output_dir,
        use_vllm=True,
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=0.3,
        bf16=True,
        per_device_train_batch_size=args.per_device_batch,
        gradient_accumulation_steps=args.grad_accum,
        num_generations=args.num_generations,
        max_group_size=args.max_group_size,
        group_size_column=None if args.uniform else "group_size",
        shuffle_dataset=args.uniform,
        max_completion_length=args.max_completion_length,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
        beta=0.0,
        logging_steps=1,
        prior_flops=0.0 if args.uniform else args.prior_flops,
    )
    trainer = AdaptiveGRPOTrainer(
        model=args.model,
        reward_funcs=VerifierReward(get_verifier("math")),
        args=config,
        train_dataset=dataset,
    )
    trainer.train()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
