"""lib against PyTorch / transformers on the same random weights, end to end and stage by stage."""

import numpy as np
import pytest

import lib

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
F = torch.nn.functional

GPT2 = lib.Config.gpt2(vocab_size=97, n_ctx=64, d_model=48, n_layer=3, n_head=4)
LLAMA = lib.Config.llama(vocab_size=97, n_ctx=64, d_model=48, n_layer=3, n_head=4, n_kv_head=2, d_ff=80)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def pair(request, tmp_path_factory):
    """A random-init transformers model saved with save_pretrained, and lib's load of it."""
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp(request.param)
    if request.param == "gpt2":
        hf_config = transformers.GPT2Config(**lib.checkpoint.hf_config(GPT2))
        hf = transformers.GPT2LMHeadModel(hf_config)
    else:
        hf_config = transformers.LlamaConfig(**lib.checkpoint.hf_config(LLAMA))
        hf = transformers.LlamaForCausalLM(hf_config)
    with torch.no_grad():  # non-trivial norms, so a mix-up of gain and bias would show
        for name, p in hf.named_parameters():
            if "norm" in name or "ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    hf.eval().save_pretrained(directory, safe_serialization=True)
    return hf, lib.load_pretrained(directory)


def hf_logits(hf, ids):
    with torch.inference_mode():
        return hf(torch.tensor(ids)).logits.numpy()


def test_logits_match(pair):
    hf, model = pair
    ids = np.random.default_rng(1).integers(0, 97, size=(2, 40))
    expected = hf_logits(hf, ids)
    got = model.forward(ids)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(model.forward(ids[0]), expected[0], atol=1e-4, rtol=0)
    np.testing.assert_allclose(lib.Engine(model).forward(ids), expected, atol=1e-4, rtol=0)


def test_trace_does_not_change_the_logits(pair):
    _, model = pair
    ids = np.arange(30) % 97
    logits, trace = model.forward(ids, trace=True)
    np.testing.assert_array_equal(logits, model.forward(ids))
    np.testing.assert_array_equal(trace["logits"], logits)


def test_greedy_generation_identical(pair):
    hf, model = pair
    prompt = np.array([5, 17, 3, 42])
    ours = lib.generate(model, prompt, 20, temperature=0)
    with torch.inference_mode():
        theirs = hf.generate(
            torch.tensor(prompt[None]),
            max_new_tokens=20,
            do_sample=False,
            min_new_tokens=20,
            pad_token_id=0,
            eos_token_id=None,
        )[0].numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_float64_on_request(pair, tmp_path):
    hf, model = pair
    model64 = lib.Model(model.config, _cast(model.params, np.float64))
    ids = np.arange(20) % 97
    out = model64.forward(ids)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, model.forward(ids), atol=1e-4)


def test_save_pretrained_round_trip(pair, tmp_path):
    hf, model = pair
    lib.save_pretrained(model, tmp_path)
    again = lib.load_pretrained(tmp_path)
    ids = np.arange(16) % 97
    np.testing.assert_array_equal(again.forward(ids), model.forward(ids))
    cls = type(hf)
    reloaded = cls.from_pretrained(tmp_path).eval()
    np.testing.assert_allclose(hf_logits(reloaded, ids[None])[0], model.forward(ids), atol=1e-4)


def _cast(tree, dtype):
    if isinstance(tree, dict):
        return {k: _cast(v, dtype) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_cast(v, dtype) for v in tree]
    return tree.astype(dtype)


# ---- stage by stage ------------------------------------------------------------------------

RNG = np.random.default_rng(7)


def t(x):
    return torch.from_numpy(np.ascontiguousarray(x))


def test_layer_norm():
    x, g, b = RNG.normal(size=(3, 5, 16)), RNG.normal(size=16), RNG.normal(size=16)
    np.testing.assert_allclose(
        lib.layer_norm(x, g, b), F.layer_norm(t(x), (16,), t(g), t(b)).numpy(), atol=1e-12
    )


def test_rms_norm():
    x, g = RNG.normal(size=(4, 16)), RNG.normal(size=16)
    expected = F.rms_norm(t(x), (16,), t(g), eps=1e-6).numpy()
    np.testing.assert_allclose(lib.rms_norm(x, g, 1e-6), expected, atol=1e-12)


@pytest.mark.parametrize("name", ["gelu", "gelu_exact", "silu", "softmax", "log_softmax"])
def test_activations(name):
    x = RNG.normal(size=(6, 11)) * 4
    expected = {
        "gelu": lambda: F.gelu(t(x), approximate="tanh"),
        "gelu_exact": lambda: F.gelu(t(x)),
        "silu": lambda: F.silu(t(x)),
        "softmax": lambda: F.softmax(t(x), -1),
        "log_softmax": lambda: F.log_softmax(t(x), -1),
    }[name]().numpy()
    np.testing.assert_allclose(getattr(lib, name)(x), expected, atol=1e-12, rtol=1e-12)


def test_linear():
    x, w, b = RNG.normal(size=(5, 8)), RNG.normal(size=(8, 3)), RNG.normal(size=3)
    np.testing.assert_allclose(lib.linear(x, w, b), F.linear(t(x), t(w.T), t(b)).numpy(), atol=1e-12)


@pytest.mark.parametrize("masked", [False, True])
def test_scaled_dot_product_attention(masked):
    q, k, v = (RNG.normal(size=(2, 3, 7, 8)) for _ in range(3))
    mask = lib.causal_mask(7) if masked else None
    expected = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=None if mask is None else t(mask))
    np.testing.assert_allclose(lib.scaled_dot_product_attention(q, k, v, mask), expected.numpy(), atol=1e-12)


def test_causal_mask_matches_is_causal():
    q, k, v = (RNG.normal(size=(1, 2, 9, 4)) for _ in range(3))
    expected = F.scaled_dot_product_attention(t(q), t(k), t(v), is_causal=True).numpy()
    np.testing.assert_allclose(
        lib.scaled_dot_product_attention(q, k, v, lib.causal_mask(9)), expected, atol=1e-12
    )


def hf_rope(q, k, position_ids, theta=10000.0):
    """transformers' rotation (halves) with cos and sin made in float64 as LlamaRotaryEmbedding
    makes them (it works in float32): one angle per pair, the angles repeated for both halves."""
    from transformers.models.llama import modeling_llama as ml

    d = q.shape[-1]
    inv_freq = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)  # [d/2]
    angles = t(position_ids).double()[..., None] * inv_freq  # [B, T, d/2]
    emb = torch.cat([angles, angles], dim=-1)  # [B, T, d]
    return ml.apply_rotary_pos_emb(t(q), t(k), emb.cos(), emb.sin())  # unsqueezed over heads


def test_rope_matches_transformers():
    q, k = RNG.normal(size=(1, 2, 6, 8)), RNG.normal(size=(1, 2, 6, 8))
    positions = np.arange(3, 9)
    q_hf, k_hf = hf_rope(q, k, positions[None])
    np.testing.assert_allclose(lib.apply_rope(q, positions), q_hf.numpy(), atol=1e-12)
    np.testing.assert_allclose(lib.apply_rope(k, positions), k_hf.numpy(), atol=1e-12)


def test_rope_per_sequence_positions():
    """Positions (B, T): each sequence of the batch at its own offsets (as after left padding)."""
    q, k = RNG.normal(size=(3, 2, 5, 8)), RNG.normal(size=(3, 2, 5, 8))
    positions = np.array([np.arange(5), np.arange(7, 12), np.arange(100, 105)])  # [B, T]
    q_hf, k_hf = hf_rope(q, k, positions)
    np.testing.assert_allclose(lib.apply_rope(q, positions[:, None, :]), q_hf.numpy(), atol=1e-12)
    np.testing.assert_allclose(lib.apply_rope(k, positions[:, None, :]), k_hf.numpy(), atol=1e-12)


def roformer_rope(x, positions, theta=10000.0):
    """RoFormer's formula as Meta's original Llama code writes it: neighbouring features (2j, 2j+1)
    are one complex number, multiplied by exp(i m theta^(-2j/d))."""
    d = x.shape[-1]
    freqs = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # [d/2]
    angles = t(positions).double()[..., None] * freqs  # [..., T, d/2]
    rotations = torch.polar(torch.ones_like(angles), angles)
    pairs = torch.view_as_complex(t(x).reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(pairs * rotations).flatten(-2).numpy()


@pytest.mark.parametrize("positions_shape", ["shared", "per-sequence"])
def test_interleaved_rope_matches_roformer(positions_shape):
    x = RNG.normal(size=(2, 3, 6, 8))  # [B, H, T, d_head]
    if positions_shape == "shared":
        positions = np.arange(10, 16)  # [T]
    else:
        positions = np.stack([np.arange(6), np.arange(40, 46)])[:, None, :]  # [B, 1, T]
    expected = roformer_rope(x, positions, theta=500.0)
    np.testing.assert_allclose(lib.apply_rope(x, positions, 500.0, "interleaved"), expected, atol=1e-12)


@pytest.mark.parametrize(
    "mask_shape", [(7, 9), (2, 1, 7, 9), (2, 3, 7, 9), (1, 3, 1, 9)], ids=["TS", "B1TS", "BHTS", "1H1S"]
)
def test_boolean_masks_broadcast_like_torch(mask_shape):
    q = RNG.normal(size=(2, 3, 7, 8))
    k, v = RNG.normal(size=(2, 2, 3, 9, 8))
    mask = RNG.random(mask_shape) < 0.6
    mask[..., 0] = True  # every query sees at least one key (else both give NaN)
    expected = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(mask)).numpy()
    np.testing.assert_allclose(lib.scaled_dot_product_attention(q, k, v, mask), expected, atol=1e-12)


def test_cross_entropy_and_perplexity():
    logits, targets = RNG.normal(size=(2, 9, 13)), RNG.integers(0, 13, size=(2, 9))
    expected = F.cross_entropy(t(logits.reshape(-1, 13)), t(targets.reshape(-1))).item()
    assert lib.cross_entropy(logits, targets) == pytest.approx(expected, abs=1e-12)
    assert lib.perplexity(expected) == pytest.approx(np.exp(expected))
