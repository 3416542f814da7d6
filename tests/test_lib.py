"""lib on its own: KV cache, properties, sampling rules, edge cases and error messages."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lib

GPT2 = lib.Config.gpt2(vocab_size=61, n_ctx=48, d_model=32, n_layer=2, n_head=4)
LLAMA = lib.Config.llama(vocab_size=61, n_ctx=48, d_model=32, n_layer=2, n_head=4, n_kv_head=2, d_ff=40)
CONFIGS = {"gpt2": GPT2, "llama": LLAMA}


@pytest.fixture(scope="module", params=list(CONFIGS))
def model(request):
    config = CONFIGS[request.param]
    return lib.Model(config, lib.init_params(config, seed=3))


# ---- the model -----------------------------------------------------------------------------


def test_kv_cache_matches_full_recomputation(model):
    ids = np.random.default_rng(0).integers(0, 61, size=40)
    full = model.forward(ids)
    cache = model.new_cache()
    pieces = [model.forward(ids[:17], cache=cache)]
    pieces += [model.forward(ids[t : t + 1], cache=cache) for t in range(17, 40)]
    assert np.abs(np.concatenate(pieces) - full).max() <= 1e-5
    assert cache.length == 40


def test_kv_cache_for_a_batch(model):
    ids = np.random.default_rng(6).integers(0, 61, size=(3, 20))
    cache = model.new_cache(3)
    pieces = [model.forward(ids[:, :11], cache=cache), model.forward(ids[:, 11:], cache=cache)]
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), model.forward(ids), atol=1e-5, rtol=0)
    with pytest.raises(
        ValueError, match=r"the cache serves inputs with leading axes \(3,\), ids has shape \(5,\)"
    ):
        model.forward(np.arange(5), cache=cache)


def test_block_takes_one_sequence_or_a_batch(model):
    x = np.random.default_rng(5).standard_normal((2, 9, 32)).astype(np.float32)
    layer, c = model.params["h"][0], model.config
    batch = lib.block(x, layer, c)
    assert batch.shape == (2, 9, 32)
    for b in range(2):
        np.testing.assert_allclose(lib.block(x[b], layer, c), batch[b], atol=1e-6, rtol=0)
    deeper = lib.block(np.stack([x, x[::-1]]), layer, c)  # (2, 2, T, d): any leading axes
    np.testing.assert_allclose(deeper[0], batch, atol=1e-6, rtol=0)


def test_batch_equals_one_sequence_at_a_time(model):
    ids = np.random.default_rng(1).integers(0, 61, size=(3, 12))
    batch = model.forward(ids)
    assert batch.shape == (3, 12, 61)
    for b in range(3):
        np.testing.assert_allclose(batch[b], model.forward(ids[b]), atol=1e-6)


def test_trace_names_are_ordered_and_complete(model):
    ids = np.arange(6)
    logits, trace = model.forward(ids, trace=True)
    names = list(trace)
    assert names[0] == "embed.tok" and names[-2:] == ["ln_f", "logits"]
    for i in range(model.config.n_layer):
        block = [n for n in names if n.startswith(f"h.{i}.")]
        assert block[0] == f"h.{i}.ln_1" and block[-1] == f"h.{i}.resid_post"
        for station in [
            "attn.q",
            "attn.scores_raw",
            "attn.scores_masked",
            "attn.probs",
            "attn.heads",
            "resid_mid",
        ]:
            assert f"h.{i}.{station}" in trace
    H, T = model.config.n_head, 6
    assert trace["h.0.attn.probs"].shape == (H, T, T)
    np.testing.assert_allclose(trace["h.0.attn.probs"].sum(-1), 1, atol=1e-6)
    assert np.isneginf(trace["h.0.attn.scores_masked"][:, 0, 1:]).all()


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 60), st.integers(1, 19))
def test_causality(token, position):
    """Changing a later token never changes an earlier position's logits."""
    model = lib.Model(GPT2, lib.init_params(GPT2, seed=4))
    ids = np.arange(20) % 61
    changed = ids.copy()
    changed[position] = token
    np.testing.assert_array_equal(model.forward(ids)[:position], model.forward(changed)[:position])


def test_float32_stays_float32_and_float64_on_request():
    params = lib.init_params(GPT2, seed=0, dtype=np.float64)
    model = lib.Model(GPT2, params)
    _, trace = model.forward(np.arange(5), trace=True)
    assert all(v.dtype == np.float64 for v in trace.values())
    model32 = lib.Model(GPT2, lib.init_params(GPT2, seed=0))
    _, trace = model32.forward(np.arange(5), trace=True)
    assert {k for k, v in trace.items() if v.dtype != np.float32} == set()


# ---- properties of the stages ----------------------------------------------------------------

finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 30)), elements=finite))
def test_softmax_is_stable_and_normalised(x):
    p = lib.softmax(x)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(-1), 1, atol=1e-5)
    x64 = x.astype(np.float64)
    exact = x64 - x64.max(-1, keepdims=True)
    exact -= np.log(np.exp(exact).sum(-1, keepdims=True))
    np.testing.assert_allclose(lib.log_softmax(x), exact, rtol=1e-5, atol=1e-3)


def test_softmax_of_huge_logits():
    p = lib.softmax(np.array([1e4, 1e4 - 1, -1e4], dtype=np.float32))
    np.testing.assert_allclose(p, [1 / (1 + np.e**-1), np.e**-1 / (1 + np.e**-1), 0], rtol=1e-6)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(2, 16)), elements=st.floats(-100, 100)))
def test_norms(x):
    d = x.shape[-1]
    y = lib.layer_norm(x, np.ones(d), np.zeros(d))
    var = x.var(-1)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-9)
    np.testing.assert_allclose(y.var(-1), var / (var + 1e-5), rtol=1e-6, atol=1e-9)  # 1 unless var ~ eps
    r = lib.rms_norm(x, np.ones(d))
    ms = (x**2).mean(-1)
    np.testing.assert_allclose((r**2).mean(-1), ms / (ms + 1e-6), rtol=1e-6, atol=1e-9)


def test_rope_preserves_norms_and_depends_on_distance():
    q, k = np.random.default_rng(0).normal(size=(2, 1, 8))
    rq = lambda m: lib.apply_rope(q, np.array([m]))
    rk = lambda m: lib.apply_rope(k, np.array([m]))
    np.testing.assert_allclose(np.linalg.norm(rq(5)), np.linalg.norm(q))
    np.testing.assert_allclose(rq(7) @ rk(3).T, rq(14) @ rk(10).T, atol=1e-12)


def test_interleaved_rope_is_halves_on_reordered_features():
    """Interleaved pairs (2j, 2j+1) are the halves pairs (j, j + d/2) with the features reordered."""
    x = np.random.default_rng(1).normal(size=(2, 5, 8))
    order = np.stack([np.arange(4), np.arange(4, 8)], axis=-1).reshape(-1)  # 0, 4, 1, 5, 2, 6, 3, 7
    positions = np.arange(3, 8)
    np.testing.assert_allclose(
        lib.apply_rope(x[..., order], positions, pairing="interleaved"),
        lib.apply_rope(x, positions)[..., order],
        atol=1e-12,
    )


def test_interleaved_model_is_the_halves_model_with_reordered_weights():
    """Config.rope_pairing reaches every block: reorder each head's query and key columns of
    c_attn the same way, and an interleaved model computes the halves model's logits."""
    halves = lib.Model(LLAMA, lib.init_params(LLAMA, seed=8))
    d_head, H, KV = LLAMA.d_head, LLAMA.n_head, LLAMA.n_kv_head
    half = d_head // 2
    within = np.stack([np.arange(half), np.arange(half, d_head)], axis=-1).reshape(-1)
    columns = np.arange((H + 2 * KV) * d_head)
    for head in range(H + KV):  # query heads, then key heads; values keep their order
        columns[head * d_head : (head + 1) * d_head] = head * d_head + within
    params = copy.deepcopy(halves.params)
    for layer in params["h"]:
        layer["attn"]["c_attn"]["w"] = layer["attn"]["c_attn"]["w"][:, columns]
    interleaved = lib.Model(LLAMA.replace(rope_pairing="interleaved"), params)
    ids = np.arange(20) % 61
    np.testing.assert_allclose(interleaved.forward(ids), halves.forward(ids), atol=1e-5, rtol=0)


def test_attention_positions_per_sequence():
    """positions (B, T) give each sequence its own; the same as running each sequence alone."""
    params = lib.init_params(LLAMA, seed=9)["h"][0]["attn"]
    x = np.random.default_rng(2).standard_normal((2, 6, 32)).astype(np.float32)
    positions = np.array([np.arange(6), np.arange(10, 16)])

    def attend(x, positions):
        return lib.multi_head_attention(x, params, 4, 2, positions=positions, rope_theta=10000.0)

    batch = attend(x, positions)
    for b in range(2):
        np.testing.assert_allclose(batch[b], attend(x[b], positions[b]), atol=1e-6, rtol=0)
    deeper = attend(np.stack([x, x]), np.stack([positions, positions]))  # (2, 2, T, d)
    np.testing.assert_allclose(deeper[1], batch, atol=1e-6, rtol=0)


def test_tracing_a_single_stage():
    """Any stage can be traced on its own; scope() prefixes the names it records."""
    params = lib.init_params(GPT2, seed=2)["h"][0]
    x = np.random.default_rng(3).standard_normal((5, 32)).astype(np.float32)
    with lib.tracing() as trace, lib.scope("h.0"):
        out = lib.block(x, params, GPT2)
    assert list(trace)[:2] == ["h.0.ln_1", "h.0.attn.q"] and list(trace)[-1] == "h.0.resid_post"
    np.testing.assert_array_equal(trace["h.0.resid_post"], out)
    assert trace["h.0.attn.probs"].shape == (4, 5, 5)
    with lib.tracing() as outer:
        with lib.tracing() as inner:
            lib.softmax(np.zeros(3))
            lib.trace.traced("x", np.zeros(1))
        lib.trace.traced("y", np.zeros(1))
    assert list(inner) == ["x"] and list(outer) == ["y"]
    assert lib.trace.traced("z", 5) == 5  # not tracing: nothing is kept, the value passes through


# ---- sampling --------------------------------------------------------------------------------

LOGITS = np.log(np.array([0.05, 0.4, 0.05, 0.3, 0.2]))


def test_top_k_exact_distribution():
    np.testing.assert_allclose(
        lib.filtered_probs(LOGITS, top_k=2), [0, 0.4 / 0.7, 0, 0.3 / 0.7, 0], atol=1e-12
    )


def test_top_p_keeps_the_token_that_crosses_the_threshold():
    # ranked 0.4, 0.3, 0.2, ...: 0.4 < 0.6, then 0.7 crosses 0.6: keep {1, 3}
    np.testing.assert_allclose(
        lib.filtered_probs(LOGITS, top_p=0.6), [0, 0.4 / 0.7, 0, 0.3 / 0.7, 0], atol=1e-12
    )
    np.testing.assert_allclose(
        lib.filtered_probs(LOGITS, top_p=0.7000001), [0, 4 / 9, 0, 3 / 9, 2 / 9], atol=1e-9
    )
    assert (lib.filtered_probs(LOGITS, top_p=1e-9) > 0).sum() == 1


def test_combination_order_temperature_then_k_then_p():
    z = LOGITS / 0.5
    p = np.exp(z - z.max())
    p /= p.sum()
    top3 = np.argsort(-p, kind="stable")[:3]
    kept = np.zeros(5)
    kept[top3] = p[top3] / p[top3].sum()
    order = np.argsort(-kept, kind="stable")
    cum = np.cumsum(kept[order]) - kept[order]
    final = np.zeros(5)
    final[order[cum < 0.8]] = kept[order[cum < 0.8]]
    final /= final.sum()
    np.testing.assert_allclose(lib.filtered_probs(LOGITS, 0.5, top_k=3, top_p=0.8), final, atol=1e-12)


def test_edge_cases_change_nothing_or_are_greedy():
    base = lib.softmax(LOGITS)
    np.testing.assert_allclose(lib.filtered_probs(LOGITS, top_k=5), base)
    np.testing.assert_allclose(lib.filtered_probs(LOGITS, top_k=99), base)
    np.testing.assert_allclose(lib.filtered_probs(LOGITS, top_p=1.0), base)
    greedy = np.eye(5)[1]
    np.testing.assert_allclose(lib.filtered_probs(LOGITS, top_k=1), greedy)
    np.testing.assert_allclose(lib.filtered_probs(LOGITS, temperature=0), greedy)
    assert lib.sample_next(LOGITS, None, temperature=0) == 1
    np.testing.assert_allclose(lib.filtered_probs(LOGITS, temperature=1e6), np.full(5, 0.2), atol=1e-5)


def test_ties_are_broken_by_lower_id():
    tied = np.array([1.0, 3.0, 2.0, 3.0, 3.0])
    np.testing.assert_allclose(lib.filtered_probs(tied, top_k=2), [0, 0.5, 0, 0.5, 0])
    assert lib.sample_next(tied, None, temperature=0) == 1


def test_seeded_sampling_frequencies_and_reproducibility():
    rng = np.random.default_rng(0)
    draws = np.array([lib.sample_next(LOGITS, rng, top_k=3) for _ in range(20000)])
    freq = np.bincount(draws, minlength=5) / len(draws)
    np.testing.assert_allclose(freq, [0, 4 / 9, 0, 3 / 9, 2 / 9], atol=0.015)
    a = [lib.sample_next(LOGITS, np.random.default_rng(7)) for _ in range(3)]
    b = [lib.sample_next(LOGITS, np.random.default_rng(7)) for _ in range(3)]
    assert a == b


def test_generate_budget_stop_token_and_probs(model):
    prompt = np.array([1, 2, 3])

    def run(**kw):
        return lib.generate(model, prompt, 10, rng=np.random.default_rng(0), **kw)

    out, probs = run(return_probs=True)
    assert len(out) == 13 and probs.shape == (10, 61)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
    np.testing.assert_array_equal(run(), out)
    np.testing.assert_array_equal(run(use_cache=False), out)
    stop = int(out[5])
    stopped = run(stop_token=stop)
    assert stopped[-1] == stop and len(stopped) == 3 + list(out[3:]).index(stop) + 1
    assert len(lib.generate(model, np.arange(45) % 61, 10, temperature=0)) == 48  # context is 48


def test_generate_continues_a_shared_generator(model):
    """One generator passed to two calls gives one stream of draws: the second call differs."""
    rng = np.random.default_rng(4)
    first = lib.generate(model, np.array([7]), 12, rng=rng)
    second = lib.generate(model, np.array([7]), 12, rng=rng)
    np.testing.assert_array_equal(first, lib.generate(model, np.array([7]), 12, rng=np.random.default_rng(4)))
    assert not np.array_equal(first, second)
    with pytest.raises(ValueError, match="needs a random generator"):
        lib.generate(model, np.array([7]), 3)


def test_greedy_generation_is_the_argmax_of_the_textbook_forward(model):
    """generate runs on the engine; step for step it picks what Model.forward ranks first."""
    out = lib.generate(model, np.array([3, 1, 4]), 30, temperature=0)
    for t in range(3, len(out)):
        assert out[t] == np.argmax(model.forward(out[:t])[-1])


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ids, error, message",
    [
        (np.array([1.0, 2.0]), TypeError, "integer token ids"),
        (np.zeros((2, 2, 2), int), ValueError, r"shape \(T,\) or \(B, T\)"),
        (np.array([3, 61]), ValueError, r"ids\[1\] = 61 is outside the vocabulary \[0, 61\)"),
        (np.array([-1]), ValueError, "outside the vocabulary"),
        (np.arange(49) % 61, ValueError, "sequence too long"),
        (np.array([], int), ValueError, "empty"),
    ],
)
def test_bad_ids(ids, error, message):
    model = lib.Model(GPT2, lib.init_params(GPT2))
    with pytest.raises(error, match=message):
        model.forward(ids)


def test_bad_shapes_name_the_problem():
    with pytest.raises(ValueError, match="last axis must be the size of the gain"):
        lib.layer_norm(np.zeros((2, 5)), np.ones(4), np.zeros(4))
    with pytest.raises(ValueError, match="x's last axis must equal w's first axis"):
        lib.linear(np.zeros((2, 5)), np.zeros((4, 3)))
    with pytest.raises(TypeError, match="float32 or float64"):
        lib.softmax(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="do not fit the context"):
        lib.position_embedding(10, np.zeros((8, 4)))
    with pytest.raises(ValueError, match="not divisible by n_head"):
        lib.Config.gpt2(d_model=30, n_head=4)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        lib.apply_temperature(LOGITS, -1)
    with pytest.raises(ValueError, match="top_p must be in"):
        lib.top_p_filter(LOGITS, 0)
    with pytest.raises(ValueError, match="needs a random generator"):
        lib.sample_next(LOGITS)
    with pytest.raises(ValueError, match=r"positions of shape \(4,\) for x with 5 tokens"):
        lib.apply_rope(np.zeros((5, 8)), np.arange(4))
    with pytest.raises(ValueError, match=r"positions has shape \(3, 5\), which does not broadcast"):
        lib.apply_rope(np.zeros((2, 5, 8)), np.zeros((3, 5), int))
    with pytest.raises(ValueError, match="pairing='pairs'"):
        lib.apply_rope(np.zeros((5, 8)), np.arange(5), pairing="pairs")
    q = np.zeros((2, 3, 4, 8))
    with pytest.raises(TypeError, match="mask must be boolean"):
        lib.scaled_dot_product_attention(q, q, q, np.zeros((4, 4)))
    with pytest.raises(
        ValueError, match=r"mask has shape \(2, 4, 4\), which does not broadcast to the scores"
    ):
        lib.scaled_dot_product_attention(q, q, q, np.ones((2, 4, 4), bool))
    with pytest.raises(ValueError, match="rope_pairing='interleaved' has no Hugging Face checkpoint format"):
        lib.checkpoint.family(LLAMA.replace(rope_pairing="interleaved"))


def test_bad_checkpoints(tmp_path):
    from safetensors.numpy import load_file, save_file

    model = lib.Model(GPT2, lib.init_params(GPT2))
    good = lib.save_pretrained(model, tmp_path / "good")
    tensors = load_file(good / "model.safetensors")

    def variant(name, change):
        directory = tmp_path / name
        directory.mkdir()
        (directory / "config.json").write_text((good / "config.json").read_text())
        save_file(change(dict(tensors)), str(directory / "model.safetensors"))
        return directory

    missing = variant("missing", lambda t: {k: v for k, v in t.items() if "h.1.mlp.c_fc.weight" not in k})
    with pytest.raises(ValueError, match=r"missing transformer\.h\.1\.mlp\.c_fc\.weight"):
        lib.load_pretrained(missing)
    extra = variant("extra", lambda t: {**t, "transformer.h.2.ln_1.weight": np.ones(32, np.float32)})
    with pytest.raises(ValueError, match=r"unexpected transformer\.h\.2\.ln_1\.weight"):
        lib.load_pretrained(extra)
    shape = variant("shape", lambda t: {**t, "transformer.wpe.weight": np.ones((47, 32), np.float32)})
    with pytest.raises(
        ValueError, match=r"transformer\.wpe\.weight has shape \(47, 32\), expected \(48, 32\)"
    ):
        lib.load_pretrained(shape)
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text('{"architectures": ["BertForMaskedLM"], "model_type": "bert"}')
    (bert / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="unsupported architecture 'BertForMaskedLM'"):
        lib.load_pretrained(bert)
    with pytest.raises(FileNotFoundError, match="no shipped model"):
        lib.load_pretrained("no-such-model")
