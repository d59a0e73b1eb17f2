import pytest
import torch

from sgpo_curate.config import SamplingConfig
from sgpo_curate.samplers import derive_seed, get_sampler
from sgpo_curate.sources import load_queries


@pytest.fixture(scope="module")
def sampler(tiny_model_dir):
    return get_sampler("transformers", tiny_model_dir)


@pytest.fixture(scope="module")
def queries():
    return load_queries("gsm8k", limit=3)[0]


def test_exactly_k_samples_per_query_within_the_token_budget(sampler, queries):
    out = sampler.sample(queries, SamplingConfig(k=3, max_new_tokens=12), seed=0)
    assert len(out) == len(queries)
    for samples in out:
        assert len(samples.texts) == len(samples.completion_tokens) == 3
        assert all(1 <= n <= 12 for n in samples.completion_tokens)
        assert samples.prompt_tokens > 20


def test_same_seed_same_samples_and_global_rng_untouched(sampler, queries):
    config = SamplingConfig(k=2, max_new_tokens=10)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = sampler.sample(queries, config, seed=7)
    assert torch.rand(1) == before  # the caller's RNG stream is not consumed
    assert sampler.sample(queries, config, seed=7) == first
    assert sampler.sample(queries, config, seed=8) != first


def test_stop_token_ends_a_sample(sampler):
    eos = sampler.tokenizer.eos_token_id
    other = sampler.tokenizer.convert_tokens_to_ids("7")
    assert sampler._cut([other, other, eos, other]) == ("77", 3)
    assert sampler._cut([other]) == ("7", 1)


def test_seeds_are_stable_and_key_dependent():
    assert derive_seed(0, "a") == derive_seed(0, "a")
    assert derive_seed(0, "a") != derive_seed(0, "b") != derive_seed(1, "b")


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
