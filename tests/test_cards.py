"""Dataset card: valid YAML that DatasetCard loads, one config per model, counts and pictures that exist."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import curation_helpers as helpers  # tests/ is on pytest's pythonpath
import pytest
from huggingface_hub import DatasetCard

from sgpo_curate import cards
from sgpo_curate.cards import (
    GENERATED_END,
    GENERATED_START,
    join_card,
    load_template,
    render_card,
    render_plots,
)
from sgpo_curate.curation import CurateConfig, curate, write_curated
from sgpo_curate.dataset_folder import DatasetFolder


def read_summaries(path):
    return DatasetFolder(path).read_summaries()


RUN_INFO, make_pool, make_profile = helpers.RUN_INFO, helpers.make_pool, helpers.make_profile


def _two_configs(out_dir):
    first = curate(make_pool())
    write_curated(first, out_dir, RUN_INFO)
    other_model = [make_profile(i, i % 9, model="org/other-model") for i in range(30)]
    second = curate(other_model, CurateConfig(config_name="other", rule="symmetric"))
    write_curated(second, out_dir, RUN_INFO | {"model": "org/other-model", "model_revision": "feedbeef"})
    return first, second


def test_templates_are_packaged():
    text = load_template()
    assert "{{ repo_id }}" in text and "## Use" in text
    assert "## Compute" in load_template("model_card.md")


def test_templates_are_found_from_an_uninstalled_source_tree(monkeypatch):
    # A clone imported without installing it has cards/ but no `sgpo_curate.card_templates` package.
    packaged = {name: load_template(name) for name in ("dataset_card.md", "model_card.md")}
    repository = Path(__file__).resolve().parents[1]
    if Path(cards.__file__).resolve().is_relative_to(repository):  # imported from this clone, not a wheel
        assert cards.SOURCE_TREE_TEMPLATES == repository / "cards"
    monkeypatch.setattr(cards, "SOURCE_TREE_TEMPLATES", repository / "cards")
    monkeypatch.setattr(cards, "TEMPLATES", "sgpo_curate.not_installed_templates")
    assert {name: load_template(name) for name in packaged} == packaged


def test_card_yaml_loads_and_lists_every_config(tmp_path):
    first, second = _two_configs(tmp_path)
    card = DatasetCard.load(tmp_path / "README.md")
    meta = card.data.to_dict()
    assert [c["config_name"] for c in meta["configs"]] == ["other", "tiny-llama"]
    assert meta["configs"][1]["data_files"] == [{"split": "train", "path": "data/tiny-llama/train-*"}]
    assert [c.get("default", False) for c in meta["configs"]] == [True, False]  # several: one is the default
    assert meta["license"] == "mit"
    assert meta["language"] == ["en"] and "arxiv:2606.08854" in meta["tags"]
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
    first = render_plots(result.summary(RUN_INFO), tmp_path / "a")
    second = render_plots(result.summary(RUN_INFO), tmp_path / "b")
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes(), name
    write_curated(result, tmp_path / "out", RUN_INFO)
    summaries = read_summaries(tmp_path / "out")
    assert render_card(summaries, "me/x") == render_card(summaries, "me/x")


def test_configs_of_an_existing_card_are_kept(tmp_path):
    write_curated(curate(make_pool()), tmp_path, RUN_INFO)
    foreign = [{"config_name": "raw", "data_files": [{"split": "train", "path": "raw/*.parquet"}]}]
    text = render_card(read_summaries(tmp_path), existing=join_card({"configs": foreign}, "# Labels\n"))
    meta = DatasetCard(text).data.to_dict()
    assert [c["config_name"] for c in meta["configs"]] == ["raw", "tiny-llama"]
    assert "| `raw` | added by another tool" in text


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
    text = render_card(read_summaries(tmp_path), existing=join_card(existing | {"configs": stale_raw}, ""))
    meta = DatasetCard(text).data.to_dict()
    assert meta["language"] == ["en"] and meta["other_tool"] == {"version": 3}
    french = render_card(read_summaries(tmp_path), existing=join_card({"language": ["fr"]}, ""))
    assert DatasetCard(french).data.to_dict()["language"] == ["fr"]  # theirs wins
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


def test_the_raw_config_is_described_as_ours_with_sources_citations_and_a_default(tmp_path):
    run = RUN_INFO | {"source_hub_id": "openai/gsm8k", "source_citation": "Cobbe et al. 2021, GSM8K"}
    write_curated(curate(make_pool()), tmp_path, run, profiles=make_pool())
    text = (tmp_path / "README.md").read_text()
    meta = DatasetCard(text).data.to_dict()
    assert [(c["config_name"], c.get("default", False)) for c in meta["configs"]] == [
        ("tiny-llama", True),  # two configs (curated + raw): the curated one is what load_dataset(repo) gives
        ("tiny-llama-raw", False),
    ]
    assert meta["source_datasets"] == ["openai/gsm8k"]  # the Hub id, not our source name
    assert "added by another tool" not in text
    assert "| `tiny-llama-raw` | raw profile of `tiny-llama`: every profiled query" in text
    assert "## Citation" in text and "eprint        = {2606.08854}" in text
    assert "- `toy/test`: Cobbe et al. 2021, GSM8K" in text
    assert "revision `0123abcd`" in text


def test_no_sentence_is_broken_at_a_number(tmp_path):
    """The uncertainty sentence is one line, and a budgeted rule (no per-query G) gets its own sentence."""
    write_curated(curate(make_pool()), tmp_path, RUN_INFO)
    text = (tmp_path / "README.md").read_text()
    line = next(line for line in text.splitlines() if "of the kept rows the group size would differ" in line)
    assert line.startswith("For ") and line.endswith("k samples leave it open.")
    write_curated(curate(make_pool(), CurateConfig(rule="knapsack")), tmp_path / "k", RUN_INFO)
    knapsack = (tmp_path / "k" / "README.md").read_text()
    assert "of the kept rows" not in knapsack and "splits a budget across queries" in knapsack


def test_a_readme_someone_else_wrote_keeps_its_body(tmp_path):
    """Their text stays where it was; ours is added once between markers and replaced on the next write."""
    theirs = "---\nlanguage:\n- de\n---\n\n# Our benchmark\n\nHand-written notes.\n"
    (tmp_path / "README.md").write_text(theirs)
    write_curated(curate(make_pool()), tmp_path, RUN_INFO)
    first = (tmp_path / "README.md").read_text()
    assert first.index("# Our benchmark") < first.index("Hand-written notes.") < first.index(GENERATED_START)
    assert DatasetCard(first).data.to_dict()["language"] == ["de"]
    edited = first.replace(GENERATED_END, GENERATED_END + "\n\n## Notes below ours\n")
    (tmp_path / "README.md").write_text(edited)
    write_curated(curate(make_pool(), CurateConfig(config_name="again")), tmp_path, RUN_INFO)
    second = (tmp_path / "README.md").read_text()
    assert second.count(GENERATED_START) == second.count(GENERATED_END) == 1
    assert "Hand-written notes." in second and "## Notes below ours" in second
    assert "## Config `again`" in second and "## Config `tiny-llama`" in second


def test_a_card_of_an_earlier_version_without_markers_is_replaced_whole(tmp_path):
    write_curated(curate(make_pool()), tmp_path, RUN_INFO)
    meta = DatasetCard((tmp_path / "README.md").read_text()).data.to_dict()
    old = join_card(meta, "# Old title\n\nOld generated body.\n")  # sgpo_profiles in it: ours, unmarked
    text = render_card(read_summaries(tmp_path), existing=old)
    assert "Old generated body." not in text and text.count(GENERATED_START) == 1


def test_summaries_round_trip_and_read_what_an_earlier_version_wrote(tmp_path):
    import dataclasses
    import json
    import math

    from sgpo_curate.dataset_folder import ConfigSummary, CurationSettings

    write_curated(curate(make_pool()), tmp_path, RUN_INFO, profiles=make_pool())
    folder = DatasetFolder(tmp_path)
    summary = folder.read_summary("tiny-llama")
    again = ConfigSummary.from_dict(json.loads(summary.to_json()))
    assert again.to_dict() == summary.to_dict() and again.has_raw and len(again.pool_histogram) == 21
    # An earlier writer: no histograms, fingerprints, raw flag or filter setting.
    older = {k: v for k, v in summary.to_dict().items() if "histogram" not in k and "fingerprint" not in k}
    older["curate_config"].pop("filter")
    older["raw_data_files"] = None
    read = ConfigSummary.from_dict(older)
    assert read.curation.filter is True and not read.has_raw and read.pool_histogram == ()
    assert math.isnan(read.informative_rollouts) or read.informative_rollouts >= 0
    # The summary's copy of the curation settings keeps step with CurateConfig.
    theirs = {f.name: f.default for f in dataclasses.fields(CurateConfig)}
    assert {f.name: f.default for f in dataclasses.fields(CurationSettings)} == theirs


def test_a_rewritten_folder_loads_its_new_rows(tmp_path):
    """`datasets` caches a local folder by its name, config and card YAML: each config's content fingerprint
    in the YAML makes a rewritten folder load afresh instead of from the stale cache."""
    from datasets import load_dataset

    out, cache = tmp_path / "dataset", str(tmp_path / "cache")
    write_curated(curate(make_pool()), out, RUN_INFO)
    first = load_dataset(str(out), "tiny-llama", split="train", cache_dir=cache)
    # Same kept rows, other group sizes: the row count and the file's size stay the same.
    result = curate(make_pool(), CurateConfig(g_max=8))
    write_curated(result, out, RUN_INFO)
    second = load_dataset(str(out), "tiny-llama", split="train", cache_dir=cache)
    assert len(first) == len(second) and first["group_size"] != second["group_size"]
    assert second.to_list() == result.dataset.to_list()


def test_readme_and_card_name_every_published_column():
    from sgpo_curate.dataset_folder import COLUMNS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = re.search(r"with the columns `([^`]*)`", readme).group(1).replace("\n", " ")
    assert [c.strip() for c in listed.split(",")] == list(COLUMNS)
    card = load_template()
    assert all(f"| `{column}` |" in card for column in COLUMNS)
