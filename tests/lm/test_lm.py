"""GPT-2 + LoRA with Φ on a tiny offline model: gradients, causality, adapters only, data, generation."""
import pytest
import torch

from atheria.data.text import BlockStream, read_splits, to_blocks
from atheria.errors import ConfigError
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
    ids = torch.randint(0, 50257, (4, 80))  # 320 tokens: ten per Φ feature
    _, phi = module(ids)
    assert 0.0 <= phi.item() < 10.0
    module.zero_grad()
    phi.backward()
    reached = {n.split(".h.")[1].split(".")[0] for n, p in module.named_parameters()
               if p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0}
    assert reached == {"0"}  # Φ of the middle block (hidden state 1 of 2) trains the first block's adapters
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


def test_phi_of_noise_is_near_zero_at_any_token_count_and_of_structure_the_same_at_few_or_many():
    meter = PhiMeter(64)  # 32 features: at least 320 tokens
    g = torch.Generator().manual_seed(0)
    mixing = torch.randn(8, 64, generator=g)
    for tokens in (320, 640, 4096):
        noise = [meter(torch.randn(1, tokens, 64, generator=g)).item() for _ in range(5)]
        assert max(noise) < 0.06, (tokens, noise)  # uncorrected: 0.26 at 320 tokens, 0.04 at 2,048
    structured = [meter(torch.randn(1, tokens, 8, generator=g) @ mixing + 0.5 * torch.randn(1, tokens, 64, generator=g))
                  .item() for tokens in (320, 4096)]
    assert 1.0 < structured[1] and abs(structured[0] - structured[1]) < 0.3, structured


def test_phi_refuses_a_batch_of_fewer_than_ten_tokens_per_feature():
    meter = PhiMeter(64)
    assert meter.min_tokens == 320 and PhiMeter(8).min_tokens == 80
    with pytest.raises(ValueError, match=r"Φ needs at least 320 tokens per batch \(10 per feature\), got 319: raise "
                                         r"data.block_size x data.batch_size"):
        meter(torch.randn(11, 29, 64))


def test_phi_is_measured_on_the_middle_block_by_default_and_on_any_hidden_state_asked_for():
    torch.manual_seed(0)
    ids = torch.randint(0, 50257, (4, 80))
    for layer, index in ((None, 2), (-1, -1), (0, 0)):
        module = LMModule(**{**TINY, "n_layer": 4}, phi_layer=layer).eval()
        with torch.no_grad():
            out, phi = module(ids)
            states = module.model(input_ids=ids, output_hidden_states=True).hidden_states
        assert len(states) == 5 and phi.item() == pytest.approx(module.phi(states[index]).item())
    with pytest.raises(ConfigError, match=r"model.phi_layer=5 is no hidden state of this GPT-2; accepted: null \(the "
                                          r"middle block\) or an index in \[-5, 4\]"):
        LMModule(**{**TINY, "n_layer": 4}, phi_layer=5)


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
    # Under DDP rank r of 2 trains at step s on the one-process stream's batch 2s + r: different text on each rank.
    ranks = [iter(BlockStream(blocks, 4, seed=3, start=2, rank=r, world=2)) for r in (0, 1)]
    for step in (2, 3):
        got = [next(rank) for rank in ranks]
        assert [g["step"] for g in got] == [step, step]
        assert all(torch.equal(g["input_ids"], first[2 * step + r]["input_ids"]) for r, g in enumerate(got))


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


def test_a_run_whose_adapters_were_trained_for_phi_on_another_layer_is_refused_naming_the_key(tmp_path):
    """Runs saved before the middle-block default measured Φ on the last layer (-1): continuing one under the new
    default would change its objective silently."""
    from atheria.resume import check_same_law, law_identity
    from tests.helpers import compose_cfg

    cfg = compose_cfg("model=gpt2_lora", "model.pretrained=null", "model.lora_r=4")
    hparams = {"family": "lm", **{key.split(".", 1)[1]: value for key, value in law_identity(cfg).items()}}
    path = tmp_path / "old.ckpt"
    torch.save({"global_step": 50, "hyper_parameters": {**hparams, "phi_layer": -1}}, path)
    with pytest.raises(ConfigError, match=r"phi_layer=-1 .* law; this run is .*phi_layer=None.* \(model.phi_layer "
                                          r"differs\); accepted: model.phi_layer=-1 to continue it"):
        check_same_law(str(path), str(path), law_identity(cfg))
    check_same_law(str(path), str(path), law_identity(compose_cfg("model=gpt2_lora", "model.pretrained=null",
                                                                  "model.lora_r=4", "model.phi_layer=-1")))
