from sgpo_curate.models import BUNDLED_MODELS, build_tiny_model, build_tiny_tokenizer, resolve_model


def test_tiny_tokenizer_is_one_token_per_character_and_round_trips():
    tokenizer = build_tiny_tokenizer()
    text = "12 + 3 =\n15"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert len(ids) == len(text)
    assert tokenizer.decode(ids) == text


def test_tiny_chat_template_keeps_its_newlines():
    # transformers renders chat templates with trim_blocks: literal newlines after block tags vanish.
    tokenizer = build_tiny_tokenizer()
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "1+2="}]
    assert tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == "S\n1+2=\n"
    assert tokenizer.apply_chat_template(messages[1:], tokenize=False) == "1+2="


def test_tiny_model_is_small_and_seeded():
    model_a, _ = build_tiny_model(seed=3)
    model_b, _ = build_tiny_model(seed=3)
    assert model_a.num_parameters() < 2_000_000
    assert all((a == b).all() for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True))


def test_resolve_model_explains_unknown_names(tmp_path):
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    try:
        resolve_model("not-a-model")
    except FileNotFoundError as exc:
        assert all(name in str(exc) for name in BUNDLED_MODELS)
    else:
        raise AssertionError("an unknown model name must fail")


def test_a_converted_folder_loses_the_gguf_quantization_config(tmp_path, monkeypatch):
    """A GGUF `quantization_config` in a converted folder makes transformers' Trainer refuse to fine-tune it."""
    import json

    from sgpo_curate import models

    folder = tmp_path / "models" / "smollm2-135m-instruct"
    folder.mkdir(parents=True)
    (folder / "tokenizer_config.json").write_text("{}")
    config = {"model_type": "llama", "quantization_config": {"quant_method": "gguf"}, "hidden_size": 8}
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path)
    assert (
        models.bundled_model_path("smollm2-135m-instruct") == folder
    )  # an old conversion is mended in place
    assert json.loads((folder / "config.json").read_text()) == {"model_type": "llama", "hidden_size": 8}
