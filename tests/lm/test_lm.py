"""GPT-2 + LoRA with Φ on a tiny offline model: gradients, causality, adapters only, data, generation."""
import pytest
import torch

from atheria.data.text import BlockStream, read_splits, to_blocks
from atheria.lm.generate import generate
from atheria.lm.phi import PhiMeter, gaussian_mutual_information
from atheria.lm.tokenizer import load_tokenizer
from atheria.modules.lm import LMModule

TINY = dict(pretrained=None, n_layer=2, n_embd=32, n_head=2, lora_r=4)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(None)


def lora_grads(module: LMModule, ids: torch.Tensor, lambda_phi: float) -> dict[str, torch.Tensor]:
    module.zero_grad()
    module.hparams.lambda_phi = lambda_phi
    out, phi = module(ids)
    (out.loss + lambda_phi * torch.relu(module.hparams.phi_target - phi)).backward()
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.requires_grad}


def test_the_packaged_tokenizer_is_gpt2s_real_bpe(tokenizer):
    assert len(tokenizer) == 50257
    assert tokenizer.encode("The universe is big.") == [464, 6881, 318, 1263, 13]


def test_only_lora_adapters_train():
    torch.manual_seed(0)
    module = LMModule(**TINY)
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("c_attn" in n for n in trainable) and any("c_proj" in n for n in trainable)


def test_phi_gradient_reaches_lora_and_scales_with_lambda():
    torch.manual_seed(0)
    module = LMModule(**TINY)
    for p in module.parameters():  # make LoRA B non-zero so every adapter has a path to the output
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)
    module.eval()  # no dropout: the three gradients below must differ by the Φ term alone
    ids = torch.randint(0, 50257, (4, 16))
    _, phi = module(ids)
    assert 0.0 <= phi.item() < 10.0
    module.zero_grad()
    phi.backward()
    assert sum(p.grad.abs().sum().item() for p in module.parameters() if p.requires_grad) > 0
    g0, g1, g2 = (lora_grads(module, ids, lam) for lam in (0.0, 1.0, 2.0))
    name = next(iter(g0))
    diff1, diff2 = g1[name] - g0[name], g2[name] - g0[name]
    assert diff1.abs().sum() > 0
    torch.testing.assert_close(diff2, 2 * diff1, rtol=1e-3, atol=1e-7)


def test_phi_is_high_for_integrated_and_low_for_independent_halves():
    meter = PhiMeter(64)
    noise = torch.randn(8, 64, 64)
    shared = torch.randn(8, 64, 4) @ torch.randn(4, 64)
    assert meter(noise).item() < 1.0 < 5.0 < meter(shared + 0.05 * noise).item()
    a = torch.randn(2000, 3)
    assert gaussian_mutual_information(a, torch.randn(2000, 3)).item() < 0.02
    assert gaussian_mutual_information(a, a + 0.1 * torch.randn(2000, 3)).item() > 3.0


def test_attention_stays_causal():
    torch.manual_seed(0)
    module = LMModule(**TINY).eval()
    ids = torch.randint(0, 50257, (1, 16))
    changed = ids.clone()
    changed[0, 10:] = (changed[0, 10:] + 7) % 50257
    with torch.no_grad():
        a, b = module.model(input_ids=ids).logits, module.model(input_ids=changed).logits
    torch.testing.assert_close(a[0, :10], b[0, :10])
    assert not torch.allclose(a[0, 10:], b[0, 10:])


def test_checkpoints_hold_the_adapters_and_load_back_exactly():
    torch.manual_seed(0)
    module = LMModule(**TINY)
    for p in module.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)
    ckpt = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    saved = ckpt["state_dict"]
    assert all("lora_" in k or not k.startswith("model.") for k in saved)
    assert sum(v.numel() for v in saved.values()) < 0.1 * sum(v.numel() for v in module.state_dict().values())
    torch.manual_seed(1)
    again = LMModule(**TINY)
    again.load_state_dict(saved, strict=False)
    ids = torch.randint(0, 50257, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(module.eval().model(input_ids=ids).logits, again.eval().model(input_ids=ids).logits)


def test_text_blocks_splits_and_a_stream_seeded_by_step(tmp_path, tokenizer):
    (tmp_path / "notes.txt").write_text("\n".join(f"line number {i} of the text" for i in range(100)) + "\n\n")
    train, val = read_splits(str(tmp_path / "notes.txt"), "unused", 0.1)
    assert len(train) == 90 and len(val) == 10 and val[0] == "line number 90 of the text"
    blocks = to_blocks(train, tokenizer, 8)
    assert blocks.shape[1] == 8 and blocks.dtype == torch.long
    stream = iter(BlockStream(blocks, 4, seed=3, start=0))
    first = [next(stream) for _ in range(10)]
    later = iter(BlockStream(blocks, 4, seed=3, start=6))
    for want in first[6:]:
        got = next(later)
        assert got["step"] == want["step"] and torch.equal(got["input_ids"], want["input_ids"])


def test_generation_is_seeded_and_the_penalty_lowers_repeats(tokenizer):
    torch.manual_seed(0)
    model = LMModule(**TINY).model
    a = generate(model, tokenizer, "The universe", max_length=40, seed=5, num_samples=2)
    b = generate(model, tokenizer, "The universe", max_length=40, seed=5, num_samples=2)
    assert a == b and len(a) == 2 and all(s.startswith("The universe") for s in a)
    with torch.no_grad():  # a model that prefers 30 tokens, so that it repeats itself without a penalty
        model.base_model.model.transformer.wte.weight[1000:1030] *= 30

    def repeats(penalty: float) -> int:
        texts = generate(model, tokenizer, "The universe", max_length=60, seed=1, num_samples=4, temperature=0.7,
                         top_k=0, top_p=1.0, repetition_penalty=penalty)
        ids = [tokenizer.encode(t) for t in texts]
        return sum(len(x) - len(set(x)) for x in ids)

    assert repeats(2.0) < repeats(1.0)
