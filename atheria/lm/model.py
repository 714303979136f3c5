"""GPT-2 with LoRA adapters (peft): the language model whose fine-tuning Atheria runs."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel


def build_gpt2_lora(pretrained: Optional[str], lora_r: int = 8, lora_alpha: int = 32, lora_dropout: float = 0.1,
                    target_modules: Sequence[str] = ("c_attn", "c_proj"), n_layer: int = 2, n_embd: int = 64,
                    n_head: int = 2, base_seed: int = 0) -> nn.Module:
    """GPT-2 from the hub or a path (`pretrained`), or a small random GPT2Config for offline runs, with LoRA on
    `target_modules`; only the adapters are trainable. The random base is seeded, so it can be rebuilt exactly."""
    if pretrained:
        base = GPT2LMHeadModel.from_pretrained(pretrained)
    else:
        with torch.random.fork_rng():
            torch.manual_seed(base_seed)
            base = GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head))
    config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                        target_modules=list(target_modules), fan_in_fan_out=True, task_type="CAUSAL_LM")
    return get_peft_model(base, config)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only what training changes (the LoRA adapters): what a checkpoint needs besides the base model's identity."""
    names = {name for name, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}
