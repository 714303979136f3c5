"""The language-model family (model.family=lm): GPT-2 + LoRA trained on token blocks of text, with a Φ penalty.
transformers and peft are imported inside the functions: seconds, and only a run of this family needs them."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from atheria.checks import is_int, is_number, positive_int, require
from atheria.errors import ConfigError
from atheria.families.family import Family

PRETRAINED_WIDTH = 768  # the narrowest hub GPT-2 (gpt2): every size gives Φ its full feature count

if TYPE_CHECKING:
    from atheria.data.text import TextDataModule
    from atheria.modules.lm import LMModule


def check(cfg: DictConfig) -> None:
    """The base model, the LoRA and Φ settings, the text and its blocks."""
    require(cfg, "model.pretrained", lambda v: v is None or (isinstance(v, str) and v != ""),
            "a GPT-2 hub name (gpt2, gpt2-medium, ...), a local path, or null for a small random GPT-2")
    for key in ("model.lora_r", "model.lora_alpha", "model.n_layer", "model.n_embd", "model.n_head",
                "data.block_size", "data.batch_size"):
        require(cfg, key, positive_int, "a positive integer")
    require(cfg, "model.lora_dropout", lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)")
    require(cfg, "model.lambda_phi", lambda v: is_number(v) and v >= 0, "a number >= 0")
    require(cfg, "model.phi_target", lambda v: is_number(v) and 0 < v < 10, "a number in (0, 10)")
    random = cfg.model.pretrained is None
    n = cfg.model.n_layer  # a random GPT-2's depth; a hub model's is its own, and its hidden states are checked there
    require(cfg, "model.phi_layer", lambda v: v is None or (is_int(v) and (not random or -n - 1 <= v <= n)),
            "null (the middle block) or a hidden-state index" + (f" in [-{n + 1}, {n}] (0: the embeddings, {n}: "
                                                                 "the last block)" if random else ""))
    _check_phi_tokens(cfg, cfg.model.n_embd if random else PRETRAINED_WIDTH)
    require(cfg, "data.path", lambda v: v is None or (isinstance(v, str) and os.path.exists(v)),
            "an existing .txt file or folder, or null for data.dataset")
    require(cfg, "data.val_fraction", lambda v: is_number(v) and 0 < v < 1, "a fraction in (0, 1)")
    require(cfg, "trainer.val_check_interval", positive_int, "a positive integer: episodes between validations")
    require(cfg, "run.max_epochs", lambda v: v is None or positive_int(v), "a positive integer or null")
    require(cfg, "init_from", lambda v: v is None, "null (init_from seeds QCA laws; a language model continues with "
            "ckpt_path)")


def _check_phi_tokens(cfg: DictConfig, width: int) -> None:
    """Refuse batches too small for Φ to tell integration from its own sampling noise (atheria.lm.phi)."""
    from atheria.lm.phi import TOKENS_PER_FEATURE, features, min_tokens

    d, need = cfg.data, min_tokens(width)
    if d.block_size * d.batch_size < need:
        raise ConfigError(f"data.block_size x data.batch_size = {d.block_size} x {d.batch_size} = "
                          f"{d.block_size * d.batch_size} tokens per batch, too few for Φ; accepted: at least "
                          f"{need} ({TOKENS_PER_FEATURE} per Φ feature, {features(width)} features at width {width})")


def check_pretrained(cfg: DictConfig) -> None:
    """Refuse a `model.pretrained` that is neither local, cached nor reachable (atheria.lm.hub)."""
    from atheria.lm.hub import check_pretrained

    check_pretrained(cfg.model.pretrained)


def build_module(cfg: DictConfig) -> LMModule:
    """The LMModule of the config: GPT-2 (pretrained or a small random one) with LoRA adapters, and the optimizer."""
    from atheria.modules.lm import LMModule

    m, o = cfg.model, cfg.optim
    return LMModule(pretrained=m.pretrained, lora_r=m.lora_r, lora_alpha=m.lora_alpha, lora_dropout=m.lora_dropout,
                    target_modules=tuple(m.target_modules), n_layer=m.n_layer, n_embd=m.n_embd, n_head=m.n_head,
                    lambda_phi=m.lambda_phi, phi_target=m.phi_target,
                    phi_layer=m.phi_layer, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay,
                    plateau_factor=o.plateau_factor, plateau_patience=o.plateau_patience,
                    smoothing=cfg.run.smoothing, seed=cfg.seed)


def build_datamodule(cfg: DictConfig) -> TextDataModule:
    """Token blocks of the text (data.path or data.dataset), cut by the base model's tokenizer."""
    from atheria.data.text import TextDataModule
    from atheria.lm.tokenizer import load_tokenizer

    d = cfg.data
    return TextDataModule(load_tokenizer(cfg.model.pretrained), d.path, d.dataset, d.block_size, d.batch_size,
                          cfg.seed, d.val_fraction)


def law_keys(cfg: DictConfig) -> list[str]:
    """The base model and the LoRA rank; a random GPT-2's sizes too (a pretrained one is fixed by its name); and
    the layer Φ is measured on, which the adapters are trained for."""
    keys = ["pretrained", "lora_r", "phi_layer"] + ([] if cfg.model.pretrained else ["n_layer", "n_embd", "n_head"])
    return [f"model.{key}" for key in keys]


def describe(cfg: DictConfig) -> str:
    """The base model, the adapters, Φ's weight and the blocks: 'GPT-2 (gpt2) + LoRA r=8, lambda_phi=1.0, ...'."""
    m, d = cfg.model, cfg.data
    return (f"GPT-2 ({m.pretrained or f'random {m.n_layer} layers'}) + LoRA r={m.lora_r}, "
            f"lambda_phi={m.lambda_phi}, blocks of {d.block_size} x {d.batch_size}, "
            f"{cfg.run.total_episodes} steps")


def validate_every(cfg: DictConfig) -> int:
    """Lightning validates every trainer.val_check_interval episodes (by default at every save), unless
    trainer.limit_val_batches is 0."""
    return cfg.trainer.val_check_interval if cfg.trainer.limit_val_batches else 0


def law_steps(cfg: DictConfig) -> int:
    """None to time: a training step is one batch through GPT-2, not a sequence of law forwards."""
    return 0


LM = Family(name="lm", module_class="atheria.modules.lm:LMModule",
            key_metric=("val/perplexity", "validation perplexity"), check=check,
            check_needs=check_pretrained, build_module=build_module, build_datamodule=build_datamodule,
            law_keys=law_keys, describe=describe, law_steps=law_steps, cell_steps=None,
            evaluate_every=lambda cfg: 0, validate_every=validate_every, saved_before={})
