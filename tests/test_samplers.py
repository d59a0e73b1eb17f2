"""The transformers sampler against plain `generate`, on the tiny model and real GSM8K prompts; per-sample seeds."""

import dataclasses

import pytest
import torch

from sgpo_curate.config import SamplingConfig
from sgpo_curate.samplers import SeededSampling, derive_seed, get_sampler, sample_seed
from sgpo_curate.sources import load_queries


@pytest.fixture(scope="module")
def sampler(tiny_model_dir):
    return get_sampler("transformers", tiny_model_dir)


@pytest.fixture(scope="module")
def sharp_sampler(tiny_model_dir):
    """The tiny model with its weights scaled up. Untrained, it answers newlines to every prompt; scaled,
    its answers depend on every prompt token and position, so a wrong cache or position id shows."""
    sampler = get_sampler("transformers", tiny_model_dir)
    with torch.no_grad():
        for name, parameter in sampler.model.named_parameters():
            if "norm" not in name:
                parameter.mul_(10)
    return sampler


@pytest.fixture(scope="module")
def queries():
    return load_queries("gsm8k", limit=3)[0]


def with_ids(queries, prefix):
    return [dataclasses.replace(q, id=f"{prefix}/{q.id}") for q in queries]


def plain_generate(sampler, prompts, max_new_tokens, **kwargs):
    """`model.generate` as documented: the whole prompt, its default cache, no prefill of ours."""
    batch = sampler.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    output = sampler.model.generate(
        **batch, max_new_tokens=max_new_tokens, pad_token_id=sampler.tokenizer.pad_token_id, **kwargs
    )
    return [sampler._cut(row) for row in output[:, batch["input_ids"].shape[1] :].tolist()]


def test_exactly_k_samples_per_query_within_the_token_budget(sampler, queries):
    out = sampler.sample(queries, SamplingConfig(k=3, max_new_tokens=12), seed=0)
    assert len(out) == len(queries)
    for samples in out:
        assert len(samples.texts) == len(samples.completion_tokens) == 3
        assert all(1 <= n <= 12 for n in samples.completion_tokens)
        assert samples.prompt_tokens > 20


def test_greedy_batched_prefill_equals_plain_generate_of_each_prompt_alone(sharp_sampler, queries):
    """Prompts of different lengths in one left-padded batch, through the cached prefill, give what
    `generate` gives each prompt alone (no padding at all)."""
    prompts = [sharp_sampler.render(q) for q in queries]
    lengths = [len(sharp_sampler.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    assert len(set(lengths)) == len(lengths), "the batch must need padding"
    out = sharp_sampler.sample(queries, SamplingConfig(k=2, max_new_tokens=24, temperature=0), seed=0)
    for prompt, length, samples in zip(prompts, lengths, out, strict=True):
        [(text, count)] = plain_generate(sharp_sampler, [prompt], 24, do_sample=False)
        assert samples.texts == (text, text) and samples.completion_tokens == (count, count)
        assert samples.prompt_tokens == length
    assert len({s.texts[0] for s in out}) == len(out), "answers should depend on the prompt"


def test_sampling_equals_plain_generate_with_the_same_seeded_draws(sharp_sampler, queries):
    """At temperature 1 the sampler draws exactly what `generate` draws on the same padded batch with the
    same per-sample streams: the cached prefill changes no logit."""
    k, tokens = 2, 16
    out = sharp_sampler.sample(queries, SamplingConfig(k=k, max_new_tokens=tokens), seed=5)
    prompts = [sharp_sampler.render(q) for q in queries for _ in range(k)]
    width = sharp_sampler.tokenizer(prompts, return_tensors="pt", padding=True)["input_ids"].shape[1]
    seeds = [sample_seed(5, q.id, i) for q in queries for i in range(k)]
    processor = SeededSampling(seeds, tokens, 1.0, 1.0, width, "cpu")
    expected = plain_generate(sharp_sampler, prompts, tokens, do_sample=False, logits_processor=[processor])
    assert [(t, n) for s in out for t, n in zip(s.texts, s.completion_tokens, strict=True)] == expected
    assert len({t for s in out for t in s.texts}) == len(expected), "samples should differ"


def test_a_sample_depends_on_its_query_and_number_only(sharp_sampler, queries):
    """Sample i of a query is the same drawn alone, among other queries, or later as part of a top-up
    (first_sample): batch size, sharding and adaptive rounds cannot change a profile."""
    config = SamplingConfig(k=4, max_new_tokens=12)
    together = sharp_sampler.sample(queries, config, seed=3)
    alone = [sharp_sampler.sample([q], config, seed=3)[0] for q in queries]
    assert together == alone
    later = sharp_sampler.sample(queries[1:], dataclasses.replace(config, k=2, first_sample=2), seed=3)
    assert [s.texts for s in later] == [s.texts[2:] for s in together[1:]]
    first = sharp_sampler.sample(queries, dataclasses.replace(config, k=1), seed=3)
    assert [s.texts for s in first] == [s.texts[:1] for s in together]


def test_seeded_sampling_draws_from_the_warped_distribution():
    """Inverse-CDF draws with per-row uniforms follow softmax(scores / T) restricted to the top-p nucleus,
    like `generate`'s multinomial; tokens outside the nucleus are never drawn."""
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0, -3.0]])
    rows, temperature, top_p = 4000, 0.7, 0.9
    processor = SeededSampling(list(range(rows)), 1, temperature, top_p, prompt_width=3, device="cpu")
    drawn = processor(torch.zeros(rows, 3, dtype=torch.long), scores.repeat(rows, 1)).argmax(dim=-1)
    counts = torch.bincount(drawn, minlength=5).double() / rows
    probs = torch.softmax(scores[0] / temperature, dim=-1)
    nucleus = probs.sort(descending=True).values.cumsum(0) <= top_p
    keep = int(nucleus.sum()) + 1  # the token that crosses top_p stays
    expected = torch.zeros(5, dtype=torch.double)
    expected[:keep] = probs[:keep].double() / probs[:keep].sum()
    assert torch.allclose(counts, expected, atol=0.03), (counts, expected)
    assert counts[keep:].sum() == 0


def test_same_seed_same_samples_and_global_rng_untouched(sampler, queries):
    config = SamplingConfig(k=2, max_new_tokens=10)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = sampler.sample(queries, config, seed=7)
    assert torch.rand(1) == before  # the caller's RNG stream is not consumed
    sampler.sample(with_ids(queries, "other"), config, seed=7)  # no state carries over between calls
    assert sampler.sample(queries, config, seed=7) == first
    assert sampler.sample(queries, config, seed=8) != first


def test_samples_follow_the_query_ids_not_only_the_prompts(sharp_sampler, queries):
    """The same prompts under other ids are other draws: chunks never share a random stream, and a
    resumed chunk (same ids) draws what it drew before."""
    config = SamplingConfig(k=2, max_new_tokens=10)
    first = sharp_sampler.sample(queries, config, seed=0)
    assert sharp_sampler.sample(with_ids(queries, "a"), config, seed=0) != first
    assert sharp_sampler.sample(with_ids(queries, "a"), config, seed=0) == sharp_sampler.sample(
        with_ids(queries, "a"), config, seed=0
    )


def test_greedy_config_is_checked():
    assert SamplingConfig(temperature=0).temperature == 0
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        SamplingConfig(temperature=-0.5)


def test_stop_token_ends_a_sample(sampler):
    eos = sampler.tokenizer.eos_token_id
    other = sampler.tokenizer.convert_tokens_to_ids("7")
    assert sampler._cut([other, other, eos, other]) == ("77", 3)
    assert sampler._cut([other]) == ("7", 1)


def test_seeds_are_stable_and_key_dependent():
    assert derive_seed(0, "a") == derive_seed(0, "a")
    assert derive_seed(0, "a") != derive_seed(0, "b") != derive_seed(1, "b")
    assert derive_seed(0, "a", "b") != derive_seed(0, "ab") != derive_seed(0, "b", "a")


def test_unknown_model_and_sampler_are_clear(tiny_model_dir):
    with pytest.raises(FileNotFoundError, match="bundled models: smollm2-135m-instruct"):
        get_sampler("transformers", "no-such-model")
    with pytest.raises(KeyError, match="valid samplers: transformers, vllm"):
        get_sampler("sglang", tiny_model_dir)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM needs a CUDA GPU (none here)")
def test_vllm_sampler_gives_k_samples(queries):  # pragma: no cover - GPU only
    sampler = get_sampler("vllm", "smollm2-135m-instruct", gpu_memory_utilization=0.3)
    out = sampler.sample(queries, SamplingConfig(k=4, max_new_tokens=32), seed=0)
    assert [len(s.texts) for s in out] == [4, 4, 4]
    assert sampler.sample(queries, SamplingConfig(k=4, max_new_tokens=32), seed=0) == out


def test_sampler_spec_describes_without_loading_and_builds_the_same_sampler(sampler, queries, tiny_model_dir):
    import pickle

    from sgpo_curate.registry import UnknownNameError
    from sgpo_curate.samplers import SamplerSpec

    spec = pickle.loads(pickle.dumps(SamplerSpec("transformers", tiny_model_dir)))  # it travels to workers
    assert (spec.name, spec.model_name, spec.num_parameters) == (
        "transformers",
        tiny_model_dir,
        sampler.num_parameters,
    )
    config = SamplingConfig(k=2, max_new_tokens=8)
    assert spec.build().sample(queries, config, seed=3) == sampler.sample(queries, config, seed=3)
    with pytest.raises(UnknownNameError, match="valid samplers: transformers, vllm"):
        SamplerSpec("transformer", tiny_model_dir)
