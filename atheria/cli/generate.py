"""`atheria generate CKPT --prompt TEXT`: text from a fine-tuned GPT-2 + LoRA checkpoint."""
from __future__ import annotations

import argparse
from typing import Any

from atheria.cli import CliError
from atheria.cli.checkpoint import check_file, load_trained

HELP = ("Generate text with a GPT-2 + LoRA checkpoint, through transformers' sampler: temperature, top-k, top-p and "
        "a sign-correct repetition penalty (positive logits divided, negative ones multiplied).")


def add_parser(commands: Any) -> None:
    """Register `generate` and its options (defaults: the reference's sampling settings)."""
    p = commands.add_parser("generate", help="generate text with a GPT-2 + LoRA checkpoint", description=HELP)
    p.add_argument("ckpt",
                   help="a checkpoint of model=gpt2_lora, e.g. outputs/checkpoints/GPT2_LoRA_r8/best-final.ckpt")
    p.add_argument("--prompt", default="The universe", help="text to continue (default: %(default)r)")
    p.add_argument("--max-length", type=int, default=100, help="tokens in all, prompt included (default: 100)")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default: 0.8)")
    p.add_argument("--top-k", type=int, default=40, help="keep the k most likely tokens; 0 = all (default: 40)")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass (default: 0.9)")
    p.add_argument("--repetition-penalty", type=float, default=1.2, help="1.0 = none (default: 1.2)")
    p.add_argument("--num-samples", type=int, default=1, help="how many continuations (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same text (default: 0)")
    p.set_defaults(run=run)


def check_args(args: argparse.Namespace) -> None:
    """Refuse a missing checkpoint and sampling settings transformers rejects, before torch is imported."""
    check_file(args.ckpt)
    for flag in ("max_length", "num_samples", "temperature", "repetition_penalty"):
        if not getattr(args, flag) > 0:
            raise CliError(f"--{flag.replace('_', '-')} {getattr(args, flag):g} must be positive")
    if args.top_k < 0:
        raise CliError(f"--top-k {args.top_k} must be 0 (all tokens) or more")
    if not 0 < args.top_p <= 1:
        raise CliError(f"--top-p {args.top_p:g} must be in (0, 1]")


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint safely, generate, and print each sample."""
    check_args(args)
    from atheria.lm.generate import generate
    from atheria.lm.tokenizer import load_tokenizer
    from atheria.modules.lm import LMModule

    module, _ = load_trained(args.ckpt)
    if not isinstance(module, LMModule):
        raise CliError(f"{args.ckpt} is a {type(module).__name__} checkpoint; generate needs one of model=gpt2_lora")
    tokenizer = load_tokenizer(module.hparams.pretrained)
    samples = generate(module.model, tokenizer, args.prompt, args.max_length, args.temperature, args.top_k,
                       args.top_p, args.repetition_penalty, args.num_samples, args.seed)
    for i, text in enumerate(samples, 1):
        print(f"--- sample {i}\n{text}" if len(samples) > 1 else text)
    return 0
