"""Samplers: draw k answers per query under the initial policy.

Every sampler keeps one contract:

    sampler.sample(queries: list[Query], config: SamplingConfig, seed: int) -> list[Samples]

one `Samples` per query, each with exactly `config.k` texts and token counts: the query's samples number
`config.first_sample` to `config.first_sample + k - 1`. Sample i of a query is drawn from its own random
stream, seeded by `derive_seed(seed, query id, i)`: it does not depend on the other queries of the call, on
how many samples were asked for, or on the call that drew it. So a run profiles the same samples whatever
its batch size, sharding or resume points, and samples 8-15 drawn later extend a k=8 profile exactly as a
k=16 profile would have (adaptive profiling draws in rounds this way). Temperature 0 decodes greedily.
Registered samplers:

- `transformers`: CPU or GPU; many queries per `generate` call (each repeated k times); each row samples
  its next token by inverse CDF from its own uniforms, leaving the caller's global RNG untouched.
- `vllm`: GPU only (`pip install 'sgpo-curate[vllm]'`), one request per sample with `n=1` and that sample's
  seed (prefix caching shares the prompt); imported only when asked for, never on CPU paths.

`SamplerSpec(name, model)` describes a sampler without loading it, for engines that build it on their
workers (`profile(..., engine="ray")`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from sgpo_curate._extras import requires
from sgpo_curate.config import SamplingConfig
from sgpo_curate.models import BUNDLED_MODELS, resolve_model
from sgpo_curate.records import Query
from sgpo_curate.registry import SAMPLERS

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Samples:
    """k sampled answers to one query."""

    texts: tuple[str, ...]
    completion_tokens: tuple[int, ...]
    prompt_tokens: int


class Sampler(Protocol):
    name: str
    version: str
    model_name: str
    model_revision: str | None
    num_parameters: int

    def sample(self, queries: list[Query], config: SamplingConfig, seed: int) -> list[Samples]: ...


def derive_seed(seed: int, *keys: str) -> int:
    """A 63-bit seed from a base seed and string keys (query ids): stable across runs and machines."""
    digest = hashlib.sha256("\x1f".join([str(seed), *keys]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sample_seed(seed: int, query_id: str, index: int) -> int:
    """The seed of sample `index` of a query: the one place that says which random stream a sample uses."""
    return derive_seed(seed, query_id, f"sample-{index}")


def get_sampler(name: str, model: str, **kwargs) -> Sampler:
    """Build a registered sampler for `model` (a bundled name, a local folder or a Hub id).

    Example:
        >>> sampler = get_sampler("transformers", "smollm2-135m-instruct")  # doctest: +SKIP
    """
    return SAMPLERS.get(name)(model, **kwargs)


def _model_revision(model: str) -> str | None:
    """What pins the weights: the package version of a bundled model, else the commit or None."""
    if model in BUNDLED_MODELS:
        from importlib import metadata

        distribution = BUNDLED_MODELS[model][0]
        return f"{distribution}=={metadata.version(distribution)}"
    return None


@SAMPLERS.register("transformers")
class TransformersSampler:
    """Batched sampling with `transformers.generate`.

    Args:
        model (`str`): bundled name (`smollm2-135m-instruct`), local folder or Hub id.
        device (`str`, *optional*): `"cpu"`, `"cuda"`, ...; default: cuda when available.
        dtype (`str`, *optional*): torch dtype name; default float32 on CPU, bfloat16 on GPU.
    """

    name = "transformers"
    # What `run.json` records so a resume never mixes draws: 2 = one random stream per sample
    # (1 seeded each generate call from all its query ids).
    version = "2"

    def __init__(self, model: str, device: str | None = None, dtype: str | None = None):
        with requires("profile"):
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

        resolved = resolve_model(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = (
            getattr(torch, dtype) if dtype else (torch.bfloat16 if self.device != "cpu" else torch.float32)
        )
        self.tokenizer = AutoTokenizer.from_pretrained(resolved)
        self.tokenizer.padding_side = "left"  # generation continues on the right
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(resolved, dtype=torch_dtype).to(self.device).eval()
        self.model_name = model
        self.model_revision = _model_revision(model)
        self.num_parameters = self.model.num_parameters()
        self._eos_ids = self._stop_token_ids()

    def _stop_token_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def render(self, query: Query) -> str:
        return self.tokenizer.apply_chat_template(query.messages, add_generation_prompt=True, tokenize=False)

    def sample(self, queries: list[Query], config: SamplingConfig, seed: int) -> list[Samples]:
        import torch

        if not queries:
            return []
        prompts = [self.render(q) for q in queries]
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.device
        )
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
        with torch.inference_mode():
            cache = self._prefill(batch, config.k, config.max_new_tokens)
            repeated = {name: t.repeat_interleave(config.k, dim=0) for name, t in batch.items()}
            output = self.model.generate(
                **repeated,
                **{_cache_kwarg(): cache},
                **self._decoding(queries, config, seed, batch["input_ids"].shape[1]),
                max_new_tokens=config.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=sorted(self._eos_ids) or None,
            )
        generated = output[:, batch["input_ids"].shape[1] :].tolist()
        texts, counts = zip(*(self._cut(row) for row in generated), strict=True)
        k = config.k
        return [
            Samples(
                texts=tuple(texts[i * k : (i + 1) * k]),
                completion_tokens=tuple(counts[i * k : (i + 1) * k]),
                prompt_tokens=int(prompt_lengths[i]),
            )
            for i in range(len(queries))
        ]

    def _decoding(self, queries: list[Query], config: SamplingConfig, seed: int, prompt_width: int) -> dict:
        """`generate` arguments: greedy at temperature 0; else greedy over the scores of `SeededSampling`,
        which has already drawn each row's token from that sample's own stream."""
        if config.temperature == 0:
            return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        seeds = [sample_seed(seed, q.id, config.first_sample + i) for q in queries for i in range(config.k)]
        processor = SeededSampling(
            seeds, config.max_new_tokens, config.temperature, config.top_p, prompt_width, self.device
        )
        return {
            "do_sample": False,
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "logits_processor": [processor],
        }

    def _prefill(self, batch, k: int, max_new_tokens: int):
        """A KV cache holding each prompt but its last token, computed once and repeated for the k samples.

        Two costs of plain `generate` go away: it encodes every prompt k times (for long prompts and
        short answers that prefill dominates), and its dynamic cache grows by concatenation, copying the
        whole cache at every step (measured: half the time of a 128-sequence batch on CPU). The
        repeated prefix goes into a preallocated static cache instead. Position ids follow the left
        padding exactly as `generate` computes them.
        """
        from transformers import DynamicCache, StaticCache
        from transformers.cache_utils import StaticLayer

        mask = batch["attention_mask"][:, :-1]
        if mask.shape[1] == 0:
            return None
        prefix = DynamicCache(config=self.model.config)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        self.model(
            input_ids=batch["input_ids"][:, :-1],
            attention_mask=mask,
            position_ids=positions,
            **{_cache_kwarg(): prefix},
            use_cache=True,
        )
        static = StaticCache(
            config=self.model.config, max_cache_len=batch["input_ids"].shape[1] + max_new_tokens
        )
        if len(static.layers) != len(prefix.layers) or any(
            type(layer) is not StaticLayer for layer in static.layers
        ):
            prefix.batch_repeat_interleave(k)  # e.g. sliding-window layers: keep the dynamic cache
            return prefix
        for source, target in zip(prefix.layers, static.layers, strict=True):
            target.update(source.keys.repeat_interleave(k, dim=0), source.values.repeat_interleave(k, dim=0))
        return static

    def _cut(self, token_ids: list[int]) -> tuple[str, int]:
        """Text and token count of one sample, up to and including its first stop token."""
        for position, token in enumerate(token_ids):
            if token in self._eos_ids:
                token_ids = token_ids[: position + 1]
                break
        return self.tokenizer.decode(token_ids, skip_special_tokens=True), len(token_ids)


class SeededSampling:
    """A logits processor that samples every row from its own random stream (`generate` then takes it greedily).

    `generate` samples with `torch.multinomial` on the global RNG, so a row's draw would depend on every
    other row of the batch. Here row r holds `max_new_tokens` uniforms from a generator seeded with its
    sample's seed; at step t it applies temperature and top-p exactly as `generate` does (transformers'
    own warpers), then picks the token where the cumulative probability first exceeds uniform t (inverse
    CDF, the same distribution as multinomial sampling). The returned scores are 0 at that token and -inf
    elsewhere, so greedy selection keeps it.

    Args:
        seeds (`list[int]`): one seed per row (`sample_seed(...)`), rows in `generate`'s order.
        max_new_tokens (`int`): steps to draw uniforms for.
        temperature (`float`), top_p (`float`): as in `SamplingConfig`.
        prompt_width (`int`): padded prompt length; step t is `input_ids.shape[1] - prompt_width`.
        device (`str`): where the scores live.
    """

    def __init__(
        self,
        seeds: list[int],
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        prompt_width: int,
        device: str,
    ):
        import torch
        from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

        self.uniforms = torch.stack(
            [torch.rand(max_new_tokens, generator=torch.Generator().manual_seed(s)) for s in seeds]
        ).to(device)
        self.warpers = [TemperatureLogitsWarper(temperature)] + (
            [TopPLogitsWarper(top_p)] if top_p < 1 else []
        )
        self.prompt_width = prompt_width

    def __call__(self, input_ids, scores):
        import torch

        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores, dim=-1)
        cdf = probs.cumsum(dim=-1)
        step = input_ids.shape[1] - self.prompt_width
        targets = self.uniforms[:, step : step + 1].to(cdf.dtype) * cdf[:, -1:]
        tokens = torch.searchsorted(cdf, targets, right=True)
        # Rounding can put a target at the very top: fall back to the last token with probability > 0.
        last = probs.shape[-1] - 1 - (probs.flip(-1) > 0).int().argmax(dim=-1, keepdim=True)
        tokens = torch.minimum(tokens, last)
        return torch.full_like(scores, float("-inf")).scatter_(1, tokens, 0.0)


@SAMPLERS.register("vllm")
class VLLMSampler:
    """vLLM sampling on a GPU: one request per query with `n=k` and a seed derived from its id.

    Needs `pip install 'sgpo-curate[vllm]'` and a CUDA GPU; vLLM wheels hold CUDA kernels only.

    Args:
        model (`str`): bundled name, local folder or Hub id.
        **llm_kwargs: passed to `vllm.LLM` (e.g. `gpu_memory_utilization`, `max_model_len`).
    """

    name = "vllm"
    version = "2"  # one seeded request per sample (1: n=k requests seeded per query)

    def __init__(self, model: str, **llm_kwargs):
        with requires("vllm"):  # or use the transformers sampler on a CPU
            import vllm
        resolved = resolve_model(model)
        self._vllm = vllm
        self.llm = vllm.LLM(model=resolved, **llm_kwargs)
        self.model_name = model
        self.model_revision = _model_revision(model)
        config = self.llm.llm_engine.model_config.hf_config
        self.num_parameters = _count_parameters_from_config(config)

    def sample(self, queries: list[Query], config: SamplingConfig, seed: int) -> list[Samples]:
        # One request per sample, seeded by that sample alone (n=k under one seed would tie sample i to k).
        params = [
            self._vllm.SamplingParams(
                n=1,
                temperature=config.temperature,
                top_p=config.top_p,
                max_tokens=config.max_new_tokens,
                seed=sample_seed(seed, q.id, config.first_sample + i) % 2**31,
            )
            for q in queries
            for i in range(config.k)
        ]
        messages = [q.messages for q in queries for _ in range(config.k)]
        outputs = self.llm.chat(messages, params, use_tqdm=False)
        k = config.k
        return [
            Samples(
                texts=tuple(out.outputs[0].text for out in outputs[j * k : (j + 1) * k]),
                completion_tokens=tuple(
                    len(out.outputs[0].token_ids) for out in outputs[j * k : (j + 1) * k]
                ),
                prompt_tokens=len(outputs[j * k].prompt_token_ids),
            )
            for j in range(len(queries))
        ]


def _cache_kwarg() -> str:
    """The keyword a KV cache goes under: transformers 5.24 renamed `past_key_values` to `cache`.

    The old name still works there but warns (until 5.40); older releases know only the old one.
    """
    import transformers
    from packaging.version import Version

    return "cache" if Version(transformers.__version__) >= Version("5.24.0.dev0") else "past_key_values"


def _count_parameters_from_config(config) -> int:
    """Parameter count without instantiating weights on the host (for FLOPs estimates)."""
    with requires("profile"):
        import torch
        from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config).num_parameters()


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler described, to be built where it runs (a Ray worker, another process).

    Engines that generate elsewhere cannot ship a loaded model: they ship this and call `build()` on
    the worker. It answers what `run.json` records (`name`, `model_name`, `model_revision`,
    `num_parameters`) without loading weights; the parameter count comes from the model's config on
    the meta device, the way the vLLM sampler counts.

    Args:
        name (`str`): a registered sampler (`transformers`, `vllm`) or a dotted path `pkg.mod:Class`.
        model (`str`): bundled name, local folder or Hub id (must resolve on the workers too).
        options (`dict`): keyword arguments for the sampler (`device`, `dtype`, vLLM's `LLM` kwargs).

    Example:
        >>> spec = SamplerSpec("transformers", "smollm2-135m-instruct")  # doctest: +SKIP
        >>> sampler = spec.build()  # on the worker  # doctest: +SKIP
    """

    name: str
    model: str
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        SAMPLERS.get(self.name)  # an unknown name fails here, with the valid names, not on a worker

    @property
    def model_name(self) -> str:
        return self.model

    @property
    def model_revision(self) -> str | None:
        return _model_revision(self.model)

    @property
    def version(self) -> str | None:
        """The sampler class's version (how it seeds samples), as the built sampler reports it."""
        return getattr(SAMPLERS.get(self.name), "version", None)

    @cached_property
    def num_parameters(self) -> int:
        from transformers import AutoConfig

        return _count_parameters_from_config(AutoConfig.from_pretrained(resolve_model(self.model)))

    def build(self) -> Sampler:
        return get_sampler(self.name, self.model, **self.options)
