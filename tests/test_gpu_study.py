"""examples/gpu_study.py: its whole code path at a tiny size on CPU, its statistics, its device driver.

The GPU run itself needs the device machine (README "On a GPU"); here the same code runs with a model built
from config on a handful of queries of the bundled `arithmetic` source: profile, curate, every arm through `AdaptiveGRPOTrainer`,
held-out evaluation, the report. The tiny model never writes a boxed answer, so every group has zero
advantage: that makes the arms' accounting predictable (what drop-zero skips, how many rounds DAPO runs).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_study():
    spec = importlib.util.spec_from_file_location("gpu_study", ROOT / "examples" / "gpu_study.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_study"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


study = _load_study()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-study")
    assert study.main(["--tiny", "--device", "cpu", "--out", str(out), "--work", str(out / "work")]) == 0
    return out, json.loads((out / "results.json").read_text())


def _curves(results):
    return {(c["arm"], c["seed"]): c for c in results["curves"]}


def test_tiny_run_writes_every_arm_and_the_profile(tiny_run):
    out, results = tiny_run
    settings = results["settings"]
    assert sorted(_curves(results)) == sorted((arm, 0) for arm in study.ARMS)
    assert sum(results["profile"]["histogram"].values()) == settings["pool_size"]
    assert results["profile"]["flops"] > 0
    assert {"accuracy", "greedy_accuracy"} <= set(results["baseline"])
    assert results["environment"]["versions"]["trl"]
    for name in ("results.json", "results.md", "savings.png"):
        assert (out / name).stat().st_size > 0
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "results.json",
        "results.md",
        "savings.png",
    ]


def test_tiny_run_curves_charge_compute_as_each_arm_spends_it(tiny_run):
    _, results = tiny_run
    curves = _curves(results)
    profile_flops = results["profile"]["flops"]
    profile_tokens = results["profile"]["prompt_tokens"] + results["profile"]["completion_tokens"]
    for (arm, _), curve in curves.items():
        flops = [p["flops"] for p in curve["points"]]
        assert flops == sorted(flops), arm
        assert curve["steps_done"] == results["settings"]["steps"] and not curve["stopped_by_deadline"]
        # sGPO starts owing the profile; the others start at zero.
        assert flops[0] == (profile_flops if arm in study.CURATED_ARMS else 0.0), arm
        assert curve["points"][0]["tokens"] == (profile_tokens if arm in study.CURATED_ARMS else 0), arm
        assert curve["points"][0]["accuracy"] == results["baseline"]["accuracy"]
        # The ledger's totals are what the last point reports.
        assert curve["points"][-1]["rollouts"] == curve["compute"]["rollouts"]


def test_tiny_run_arms_differ_where_their_mechanism_says(tiny_run):
    _, results = tiny_run
    curves, settings = _curves(results), results["settings"]
    grpo, drop, dapo = curves[("grpo", 0)], curves[("grpo_drop_zero", 0)], curves[("dapo", 0)]
    # Same seed, same plan: the same rollouts are generated; drop-zero trains only the informative ones.
    assert drop["compute"]["rollouts"] == grpo["compute"]["rollouts"]
    assert drop["zero_adv_rollouts"] > 0
    assert drop["compute"]["trained_tokens"] < grpo["compute"]["trained_tokens"]
    # DAPO generates one batch per round; every round is charged.
    rounds = sum(step["rounds"] for step in dapo["steps"])
    assert dapo["compute"]["rollouts"] == rounds * settings["rollouts_per_step"]
    if dapo["zero_adv_rollouts"] == 1.0:  # nothing informative: every step used every round
        assert rounds == settings["steps"] * settings["dapo_max_rounds"]


def test_tiny_run_reports_the_gate_and_no_ratio_without_a_gain(tiny_run):
    out, results = tiny_run
    headline = results["summary"]["headline"]
    assert headline["gate"]["passed"] is False  # one seed, no gain: the gate cannot pass
    assert set(headline["arms"]) == set(study.ARMS) - {"grpo"}
    assert all(arm["ratio_mean"] is None for arm in headline["arms"].values())
    text = (out / "results.md").read_text()
    assert "not passed" in text and "| sgpo |" in text


def _curve(arm, seed, accuracy, flops, prior=0.0):
    points = [
        {
            "step": i,
            "flops": prior + f,
            "tokens": (prior + f) / 10,
            "trained_tokens": f / 20,
            "accuracy": a,
            "greedy_accuracy": a,
        }
        for i, (a, f) in enumerate(zip(accuracy, flops, strict=True))
    ]
    return study.Curve(arm, seed, rows=4, points=points, steps_done=len(points) - 1)


def test_summary_ratio_and_matched_flops_difference():
    settings = study.Settings(out="", arms=("grpo", "sgpo"), seeds=(0, 1, 2))
    curves = []
    for seed, gain in enumerate((0.30, 0.32, 0.34)):
        grpo = [0.2, 0.2 + gain / 2, 0.2 + gain, 0.2 + gain]
        curves.append(_curve("grpo", seed, grpo, [0, 10, 20, 30]))
        curves[-1].zero_adv_rollouts = 0.5
        # The same curve at half the training FLOPs, after a profile of 5 FLOPs.
        curves.append(_curve("sgpo", seed, grpo, [0, 5, 10, 15], prior=5.0))
    summary = study.summarize(curves, {"flops": 5.0}, settings)
    assert summary["gate"]["passed"] is True
    assert summary["gate"]["grpo_heldout_gain"] == pytest.approx(0.32)
    assert summary["bound"]["max_saving"] == pytest.approx(2.0)  # half of GRPO's rollouts carried no signal
    arm = summary["headline"]["arms"]["sgpo"]
    assert arm["seeds_reached"] == 3
    # The smoothed curves (window 3) first reach GRPO's final value at their last point: GRPO at 30 FLOPs,
    # sGPO at 15 of training plus the profile's 5 (unsmoothed, both would cross one point earlier).
    row = next(r for r in summary["table"]["accuracy"] if r["arm"] == "sgpo")
    assert all(r == pytest.approx(30 / 15) for r in row["ratio_noprof@1"])
    assert arm["ratio_mean"] == pytest.approx(30 / 20)
    assert arm["ratio_ci_low"] <= arm["ratio_mean"] <= arm["ratio_ci_high"]
    # At GRPO's final FLOPs (30) sGPO has long finished at its final value: same final, difference 0.
    assert arm["matched_flops_diff_mean"] == pytest.approx(0.0)


def test_summary_without_greedy_evaluation():
    settings = study.Settings(out="", arms=("grpo", "dapo"), seeds=(0,), eval_greedy=False)
    curves = [_curve(arm, 0, [0.2, 0.3, 0.4], [0, 10, 20]) for arm in settings.arms]
    for curve in curves:
        for point in curve.points:
            del point["greedy_accuracy"]
    assert list(study.summarize(curves, {"flops": 0.0}, settings)["table"]) == ["accuracy"]


def test_summary_keeps_seeds_that_never_reach_as_censored():
    settings = study.Settings(out="", arms=("grpo", "knapsack"), seeds=(0, 1))
    curves = [
        _curve("grpo", 0, [0.2, 0.4, 0.5, 0.5], [0, 10, 20, 30]),
        _curve("grpo", 1, [0.2, 0.41, 0.51, 0.52], [0, 10, 20, 30]),
        _curve("knapsack", 0, [0.2, 0.45, 0.55, 0.55], [0, 10, 20, 30]),
        _curve("knapsack", 1, [0.2, 0.25, 0.3, 0.3], [0, 10, 20, 30]),  # never reaches GRPO's gain
    ]
    summary = study.summarize(curves, {"flops": 0.0}, settings)
    arm = summary["headline"]["arms"]["knapsack"]
    assert (arm["seeds_reached"], arm["seeds"]) == (1, 2)
    assert (
        arm["matched_flops_diff_ci_low"] < arm["matched_flops_diff_mean"] < arm["matched_flops_diff_ci_high"]
    )


def test_device_stage2_stops_at_once_on_a_fresh_machine(tmp_path):
    env = {**os.environ, "STASH": str(tmp_path / "stash"), "OUT": str(tmp_path / "out")}
    repo = tmp_path / "repo"  # a copy of the sent tree without the carried model part
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "gpu_device.sh").write_text((ROOT / "scripts" / "gpu_device.sh").read_text())
    done = subprocess.run(
        ["bash", "scripts/gpu_device.sh", "stage2"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert done.returncode == 3
    assert "fresh machine" in done.stderr and "stage1" in done.stderr


def test_trains_a_view_of_a_converted_gguf_folder_without_its_quantization_config(tmp_path):
    from transformers import AutoModelForCausalLM

    from sgpo_curate.models import save_tiny_model

    folder = save_tiny_model(tmp_path / "converted", hidden_size=32, num_layers=1, num_heads=2)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gguf", "gguf_file": "m.gguf", "dequantize": False}
    (folder / "config.json").write_text(json.dumps(config))  # as sgpo_curate.models writes it
    assert AutoModelForCausalLM.from_pretrained(folder).is_quantized  # what the Trainer refuses to train
    view = study.trainable(str(folder), tmp_path / "work")
    assert not getattr(AutoModelForCausalLM.from_pretrained(view), "is_quantized", False)
    assert study.trainable(view, tmp_path / "again") == view  # nothing left to drop
