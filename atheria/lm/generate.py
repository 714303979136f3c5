"""Text generation with transformers' own sampler (temperature, top-k, top-p, sign-correct repetition penalty)."""
from __future__ import annotations

from typing import Any

import torch


def generate(model: Any, tokenizer: Any, prompt: str, max_length: int = 100, temperature: float = 0.8,
             top_k: int = 40, top_p: float = 0.9, repetition_penalty: float = 1.2, num_samples: int = 1,
             seed: int = 0) -> list[str]:
    """`num_samples` continuations of `prompt`, reproducible for a seed. transformers' repetition penalty divides
    positive logits and multiplies negative ones (the reference divided both, which favoured repeats)."""
    torch.manual_seed(seed)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    model.eval()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                             max_length=max_length, temperature=temperature, top_k=top_k, top_p=top_p,
                             repetition_penalty=repetition_penalty, num_return_sequences=num_samples,
                             pad_token_id=tokenizer.eos_token_id)
    return [tokenizer.decode(seq, skip_special_tokens=True) for seq in out]
