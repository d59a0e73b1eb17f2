"""Dataset card: valid YAML that DatasetCard loads, one config per model, counts and pictures that exist."""

from __future__ import annotations

import importlib.util
import re

import curation_helpers as helpers  # tests/ is on pytest's pythonpath
import pytest
from huggingface_hub import DatasetCard

from sgpo_curate.cards import load_template, read_summaries, render_card, render_plots
from sgpo_curate.curation import CurateConfig, curate, write_curated

RUN_INFO, make_pool, make_profile = helpers.RUN_INFO, helpers.make_pool, helpers.make_profile


def _two_configs(out_dir):
    first = curate(make_pool())
    write_curated(first, out_dir, RUN_INFO)
    other_model = [make_profile(i, i % 9, model="org/other-model") for i in range(30)]
    second = curate(other_model, CurateConfig(config_name="other", rule="symmetric"))
    write_curated(second, out_dir, RUN_INFO | {"model": "org/other-model", "model_revision": "feedbeef"})
    return first, second


def test_template_is_packaged():
    text = load_template()
    assert "{{ repo_id }}" in text and "## Use" in text


def test_card_yaml_loads_and_lists_every_config(tmp_path):
    first, second = _two_configs(tmp_path)
    card = DatasetCard.load(tmp_path / "README.md")
    meta = card.data.to_dict()
    assert [c["config_name"] for c in meta["configs"]] == ["other", "tiny-llama"]
    assert meta["configs"][1]["data_files"] == [{"split": "train", "path": "data/tiny-llama/train-*"}]
    assert meta["license"] == "mit"
    assert meta["annotations_creators"] == ["machine-generated"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["source_datasets"] == ["toy/test"]
    profiles = meta["sgpo_profiles"]
    assert profiles["tiny-llama"]["model_revision"] == "0123abcd"
    assert profiles["other"]["model"] == "org/other-model"
    assert profiles["tiny-llama"]["sampling"]["k"] == 8
    assert profiles["tiny-llama"]["verifier"] == "math-verify"
    assert profiles["other"]["curation"]["rule"] == "symmetric"
    assert profiles["tiny-llama"]["drops"] == first.drops


def test_card_body_says_how_it_was_made_counts_and_use(tmp_path):
    first, _ = _two_configs(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "## Config `tiny-llama`" in text and "## Config `other`" in text
    assert "revision `0123abcd`" in text and "temperature 1.0" in text and "`math-verify` 0.9.0" in text
    assert f"| `trivial` | {first.drops['trivial']} |" in text
    assert f"| `unsolvable_not_sampled` | {first.drops['unsolvable_not_sampled']} |" in text
    assert f"{first.num_profiles} profiled queries, {first.num_kept} kept" in text
    assert "hf download ORG/NAME --repo-type dataset" in text
    assert 'load_dataset("ORG/NAME", "other", split="train")' in text
    assert "AdaptiveGRPOTrainer" in text
    for column in first.dataset.column_names:
        assert f"| `{column}` |" in text
    with_repo = render_card(read_summaries(tmp_path), repo_id="me/toy-sgpo")
    assert "hf download me/toy-sgpo --repo-type dataset" in with_repo


def test_card_images_exist(tmp_path):
    _two_configs(tmp_path)
    text = (tmp_path / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) == 6
    for image in images:
        path = tmp_path / image
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image


def test_rendering_is_deterministic(tmp_path):
    result = curate(make_pool())
    first = render_plots(result, tmp_path / "a")
    second = render_plots(result, tmp_path / "b")
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes(), name
    write_curated(result, tmp_path / "out", RUN_INFO)
    summaries = read_summaries(tmp_path / "out")
    assert render_card(summaries, "me/x") == render_card(summaries, "me/x")


def test_configs_of_an_existing_card_are_kept(tmp_path):
    write_curated(curate(make_pool()), tmp_path, RUN_INFO)
    foreign = [{"config_name": "raw", "data_files": [{"split": "train", "path": "raw/*.parquet"}]}]
    text = render_card(read_summaries(tmp_path), extra_configs=foreign)
    meta = DatasetCard(text).data.to_dict()
    assert [c["config_name"] for c in meta["configs"]] == ["raw", "tiny-llama"]
    assert "| `raw` | (added by another tool" in text


def test_an_existing_cards_own_keys_are_kept_and_ours_are_rendered_afresh(tmp_path):
    """Keys another tool wrote survive; what we wrote before (a raw config that is gone, a mixed-license
    note whose reason is gone) does not."""
    write_curated(curate(make_pool()), tmp_path, RUN_INFO)
    existing = {
        "language": ["en"],
        "other_tool": {"version": 3},
        "license_name": "mixed",
        "license_details": "Rows keep their source's license: mit, apache-2.0",
        "pretty_name": "old title",
    }
    stale_raw = [{"config_name": "tiny-llama-raw", "data_files": [{"split": "train", "path": "raw/x/*"}]}]
    text = render_card(read_summaries(tmp_path), extra_configs=stale_raw, extra_metadata=existing)
    meta = DatasetCard(text).data.to_dict()
    assert meta["language"] == ["en"] and meta["other_tool"] == {"version": 3}
    assert "license_name" not in meta and "license_details" not in meta
    assert meta["pretty_name"] != "old title" and meta["license"] == "mit"
    assert [c["config_name"] for c in meta["configs"]] == ["tiny-llama"]


def test_license_ids_are_normalized_and_mixed_sources_say_other(tmp_path):
    write_curated(curate(make_pool()), tmp_path, RUN_INFO | {"source_license": "CC BY 4.0"})
    assert DatasetCard.load(tmp_path / "README.md").data.to_dict()["license"] == "cc-by-4.0"
    other = curate([make_profile(i, 3, model="org/b") for i in range(4)])
    write_curated(other, tmp_path, RUN_INFO | {"source_license": "MIT", "model": "org/b"})
    meta = DatasetCard.load(tmp_path / "README.md").data.to_dict()
    assert meta["license"] == "other" and "cc-by-4.0, mit" in meta["license_details"]


def _training_code(card: str) -> str:
    """The card's training example: the python block after "Train with"."""
    section = card[card.index("Train with") :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_card_records_the_upstream_model_and_the_reward(tmp_path):
    run = RUN_INFO | {
        "model": "smollm2-135m-instruct",
        "model_hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "verifier": "math",
        "verifier_settings": {"extraction": "strict"},
    }
    write_curated(curate(make_pool()), tmp_path, run)
    text = (tmp_path / "README.md").read_text()
    profile = DatasetCard(text).data.to_dict()["sgpo_profiles"]["tiny-llama"]
    assert profile["model_hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert profile["verifier_settings"] == {"extraction": "strict"}
    assert "`math` 0.9.0 (extraction=strict)" in text and "TRL's `accuracy_reward`" in text
    code = _training_code(text)
    assert 'model="HuggingFaceTB/SmolLM2-135M-Instruct"' in code  # a loadable id, not the bundled alias
    assert 'VerifierReward(get_verifier("math", extraction="strict"))' in code
    assert "reward_funcs=accuracy_reward" in text  # strict math: TRL's own reward reads `solution`


@pytest.mark.skipif(
    importlib.util.find_spec("trl") is None, reason="runs the trainer: needs the 'train' extra"
)
def test_card_training_example_runs_as_written(tmp_path, tiny_model_dir, monkeypatch):
    """The card's code, run unchanged: the dataset folder stands in for the Hub repo, the tiny model for the
    profiled one (it is what was profiled here, by path)."""
    import datasets

    # datasets caches a local folder by its name and config, not its content: keep this run's cache apart.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.chdir(tmp_path)
    profiles = [make_profile(i, c, k=4, model=tiny_model_dir) for i, c in enumerate((1, 2, 3))]
    run = RUN_INFO | {
        "model": tiny_model_dir,
        "model_hub_id": None,
        "verifier": "math",
        "verifier_settings": {"extraction": "strict"},
        "sampling": {"k": 4, "max_new_tokens": 16, "temperature": 0.7, "top_p": 0.95, "seed": 0},
    }
    write_curated(curate(profiles, CurateConfig(config_name="tiny")), tmp_path / "ds", run)
    card = render_card(read_summaries(tmp_path / "ds"), repo_id=str(tmp_path / "ds"))
    code = _training_code(card)
    assert f'model="{tiny_model_dir}"' in code and "temperature=0.7" in code
    namespace: dict = {}
    exec(compile(code, "card-example", "exec"), namespace)  # noqa: S102 - the card's own code, as a user runs it
    trainer = namespace["trainer"]
    assert trainer.state.global_step >= 1
    assert (tmp_path / "runs" / "sgpo").is_dir()
    trainer.reward_funcs[0].verifier.close()
