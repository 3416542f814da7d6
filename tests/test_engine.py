"""The engine against the textbook path: logits, every trace station, KV-cache decoding.

``Model.forward`` is the reference here, as ``transformers`` is for ``Model.forward`` in
``test_parity.py``: the engine computes the same numbers another way, so every difference must
be float rounding.
"""

import multiprocessing
import os
import subprocess
import sys

import numpy as np
import pytest
import threadpoolctl

import lib
from lib.engine import CHUNK, causal_attention, streaming_order

GPT2 = lib.Config.gpt2(vocab_size=61, n_ctx=400, d_model=32, n_layer=3, n_head=4)
LLAMA = lib.Config.llama(vocab_size=61, n_ctx=400, d_model=32, n_layer=3, n_head=4, n_kv_head=2, d_ff=40)
CONFIGS = {
    "gpt2": GPT2,
    "gpt2-exact-gelu": GPT2.replace(gelu="exact"),
    "llama": LLAMA,
    "llama-mha": LLAMA.replace(n_kv_head=4),
    "llama-interleaved": LLAMA.replace(rope_pairing="interleaved"),
}
ATOL = 2e-5  # float32 logits of order 1, computed in a different order


@pytest.fixture(autouse=True)
def share_even_small_work(monkeypatch):
    """These models are tiny: share their work among the cores as a GPT-2-sized prefill's is."""
    monkeypatch.setattr(lib.engine, "SHARED_FROM", 0)


@pytest.fixture(scope="module", params=list(CONFIGS))
def model(request):
    config = CONFIGS[request.param]
    return lib.Model(config, lib.init_params(config, seed=11))


@pytest.fixture(scope="module")
def engine(model):
    return lib.Engine(model)


def ids_of(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 61, size=shape)


@pytest.mark.parametrize("shape", [(9,), (2, 9), (CHUNK + 70,), (2, 2 * CHUNK + 5)])
def test_logits(model, engine, shape):
    """One sequence and a batch, short and longer than a chunk of queries."""
    ids = ids_of(shape)
    np.testing.assert_allclose(engine.forward(ids), model.forward(ids), atol=ATOL, rtol=0)


def test_every_trace_station(model, engine):
    """The engine records what it computes under the textbook's names, with the same values.

    It never holds the whole score matrix, so the attention scores and weights are the only
    stations it does not record.
    """
    ids = ids_of((2, CHUNK + 20), seed=1)
    _, textbook = model.forward(ids, trace=True)
    with lib.tracing() as fast:
        engine.forward(ids)
    inside = ("scores_raw", "scores_scaled", "scores_masked", "probs")
    assert list(fast) == [n for n in textbook if n.rsplit(".", 1)[-1] not in inside]
    for name, value in fast.items():
        assert value.shape == textbook[name].shape, name
        np.testing.assert_allclose(value, textbook[name], atol=ATOL, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("batch", [None, 2])
def test_kv_cache_decoding(model, engine, batch):
    """Prefill a prompt, then decode token by token: each step's logits are the textbook's row."""
    ids = ids_of((40,) if batch is None else (batch, 40), seed=2)
    full = model.forward(ids)
    cache = engine.new_cache(batch)
    steps = [engine.prefill(ids[..., :25], cache)]
    steps += [engine.decode(ids[..., t], cache) for t in range(25, 40)]
    np.testing.assert_allclose(np.stack(steps, axis=-2), full[..., 24:, :], atol=ATOL, rtol=0)
    assert cache.length == 40


def general_decode(engine, token, cache):
    """``decode`` by the general path, the one it takes while tracing: ``prefill`` of one token."""
    return engine.prefill(np.asarray(token)[..., None], cache)


@pytest.mark.parametrize("batch", [None, 2])
def test_one_token_steps_are_the_textbook(model, engine, batch):
    """Many steps of ``decode``'s own path (change 9) after a prefill: each step's logits are the
    textbook's row for that position, and the general path's, step by step."""
    ids = ids_of((70,) if batch is None else (batch, 70), seed=11)
    full = model.forward(ids)
    lean, general = engine.new_cache(batch), engine.new_cache(batch)
    engine.prefill(ids[..., :8], lean)
    engine.prefill(ids[..., :8], general)
    for t in range(8, 70):
        step = engine.decode(ids[..., t], lean)
        assert step.shape == full[..., t, :].shape
        np.testing.assert_allclose(step, full[..., t, :], atol=ATOL, rtol=0, err_msg=f"step {t}")
        np.testing.assert_allclose(step, general_decode(engine, ids[..., t], general), atol=1e-6, rtol=0)
    assert lean.length == general.length == 70


def test_one_token_steps_continue_and_leave_a_cache_the_model_can_continue(model, engine):
    """The model fills a cache, ``decode`` continues it token by token, the model goes on from
    there: the keys and values ``decode`` wrote (rotated, for RoPE) are the textbook's."""
    ids = ids_of(60, seed=12)
    full = model.forward(ids)
    cache = model.new_cache()
    model.forward(ids[:20], cache=cache)
    steps = np.stack([engine.decode(int(ids[t]), cache) for t in range(20, 40)])
    np.testing.assert_allclose(steps, full[20:40], atol=ATOL, rtol=0)
    np.testing.assert_allclose(model.forward(ids[40:], cache=cache), full[40:], atol=ATOL, rtol=0)


def test_decode_records_its_stations_while_tracing(model, engine):
    """Inside ``tracing()`` ``decode`` takes the general path, which records every station."""
    cache = engine.new_cache()
    engine.prefill(ids_of(5, seed=13), cache)
    with lib.tracing() as stations:
        logits = engine.decode(7, cache)
    assert "h.0.attn.q" in stations and "logits" in stations
    np.testing.assert_array_equal(stations["logits"][-1], logits)


def test_a_full_cache_refuses_one_more_token_as_before(engine):
    """A cache at the context length: ``decode`` raises the general path's error and leaves the
    cache as it was; one token less, it takes the token."""
    cache = engine.new_cache()
    engine.prefill(ids_of(399, seed=14), cache)
    engine.decode(3, cache)
    assert cache.length == 400
    with pytest.raises(ValueError, match="sequence too long") as lean:
        engine.decode(3, cache)
    with lib.tracing(), pytest.raises(ValueError) as general:
        engine.decode(3, cache)
    assert str(lean.value) == str(general.value)
    assert cache.length == 400


def test_prefill_without_a_cache_is_the_last_row(model, engine):
    ids = ids_of((3, 30), seed=3)
    np.testing.assert_allclose(engine.prefill(ids), model.forward(ids)[:, -1], atol=ATOL, rtol=0)


def test_caches_are_shared_with_the_textbook(model, engine):
    """A cache the model filled can be continued by the engine, and the other way round."""
    ids = ids_of(30, seed=4)
    full = model.forward(ids)
    cache = model.new_cache()
    model.forward(ids[:10], cache=cache)
    engine.forward(ids[10:20], cache)
    last = model.forward(ids[20:], cache=cache)
    np.testing.assert_allclose(last, full[20:], atol=ATOL, rtol=0)


@pytest.mark.parametrize("past", [0, 50])
@pytest.mark.parametrize("n_kv_head", [4, 2, 1])
@pytest.mark.parametrize("T", [1, 7, 2 * CHUNK + 37])
def test_causal_attention_is_the_masked_softmax(past, n_kv_head, T):
    """Chunks (two full and a partial one), stacked heads, the one-token path."""
    g = np.random.default_rng(5)
    q = g.standard_normal((2, 4, T, 8)).astype(np.float32)
    k, v = g.standard_normal((2, 2, n_kv_head, past + T, 8)).astype(np.float32)
    rep = 4 // n_kv_head
    expected = lib.scaled_dot_product_attention(
        q, lib.repeat_kv(k, rep), lib.repeat_kv(v, rep), lib.causal_mask(T, past + T)
    )
    np.testing.assert_allclose(causal_attention(q, k, v), expected, atol=1e-6, rtol=0)


def test_the_engine_leaves_the_model_alone(model):
    """The engine lays out its own copies: the model's arrays keep their values and layout."""
    before = {id(a): (a.flags["C_CONTIGUOUS"], a.copy()) for a in lib.model.leaves(model.params)}
    lib.Engine(model).forward(ids_of(5))
    for a in lib.model.leaves(model.params):
        contiguous, values = before[id(a)]
        assert a.flags["C_CONTIGUOUS"] == contiguous
        np.testing.assert_array_equal(a, values)


def test_products_of_many_rows_use_the_models_own_matrices(model):
    """Change 6: the engine adds a streaming copy of each matrix for one row, and keeps the model's
    own (row-major) array for products of many rows, where BLAS's matrix product reads it faster."""
    engine = lib.Engine(model)
    for theirs, ours in zip(model.params["h"], engine.params["h"], strict=True):
        for name in ("c_attn", "c_proj"):
            assert ours["attn"][name]["w"] is theirs["attn"][name]["w"]
            assert ours["attn"][name]["w_stream"].flags["F_CONTIGUOUS"]
            np.testing.assert_array_equal(ours["attn"][name]["w_stream"], theirs["attn"][name]["w"])


def test_streaming_order_keeps_values_and_shape():
    w = np.arange(12.0).reshape(4, 3)
    block, head = streaming_order(w), streaming_order(w.T, head=True)
    assert block.flags["F_CONTIGUOUS"] and head.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(block, w)
    np.testing.assert_array_equal(head, w.T)
    for laid_out, is_head in [(np.asfortranarray(w), False), (np.ascontiguousarray(w.T), True)]:
        assert streaming_order(laid_out, head=is_head) is laid_out  # already laid out so: no copy


def test_engine_errors_name_the_problem(engine):
    with pytest.raises(ValueError, match="sequence too long"):
        engine.prefill(np.zeros(401, int))
    cache = engine.new_cache()
    with pytest.raises(ValueError, match="leading axes"):
        engine.decode(np.array([1, 2]), cache)


def test_sharing_among_cores_changes_nothing(model, engine, monkeypatch):
    """Rows and heads shared among the cores (BLAS on one thread) give the numbers of the work done
    on one thread (BLAS on its own threads), up to the last bit of a BLAS that splits a product
    differently among its threads."""
    ids = ids_of((2, CHUNK + 30), seed=6)
    shared = engine.forward(ids)
    monkeypatch.setattr(lib.engine, "SHARED_FROM", np.inf)
    np.testing.assert_allclose(engine.forward(ids), shared, atol=1e-6, rtol=0)


def test_blas_gets_its_threads_back(engine, monkeypatch):
    """BLAS runs on one thread while the engine shares its work among the cores, and on as many
    as before once the engine returns, also when the engine fails."""
    blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    before = [info["num_threads"] for info in blas.info()]
    inside = []
    attention = lib.engine.causal_attention
    monkeypatch.setattr(
        lib.engine,
        "causal_attention",
        lambda *qkv: inside.append([info["num_threads"] for info in blas.info()]) or attention(*qkv),
    )
    engine.forward(ids_of((2, CHUNK + 30), seed=8))
    assert inside and all(threads == [1] * len(before) for threads in inside)
    assert [info["num_threads"] for info in blas.info()] == before

    def fail(*qkv):
        raise RuntimeError("attention failed")

    monkeypatch.setattr(lib.engine, "causal_attention", fail)
    with pytest.raises(RuntimeError, match="attention failed"):
        engine.forward(ids_of(30, seed=9))
    assert [info["num_threads"] for info in blas.info()] == before


@pytest.mark.skipif(lib.engine._CORES < 2, reason="one core: the engine shares nothing")
def test_a_shared_prefill_wakes_no_blas_thread(engine, monkeypatch):
    """While the cores share a prefill, every product runs with BLAS on one thread, the LM head's
    too (shared by the vocabulary's columns): a woken BLAS thread spins for about 0.1 s after its
    product, on a core that the next shared work (the next prefill's) needs."""
    blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    threads, matmul = [], np.matmul
    monkeypatch.setattr(
        np,
        "matmul",
        lambda *a, **k: threads.append({i["num_threads"] for i in blas.info()}) or matmul(*a, **k),
    )
    engine.prefill(ids_of(2 * CHUNK, seed=12))
    assert threads and all(t == {1} for t in threads), threads


class Refusing:
    """Helper threads that fail any work handed to them."""

    def submit(self, *args):
        raise AssertionError("the engine shared work among threads")


def test_without_control_of_blas_the_work_stays_on_one_thread(model, engine, monkeypatch):
    """Where threadpoolctl is missing or finds no BLAS, the engine shares nothing (threads calling a
    threaded BLAS would wait for each other) and computes the same logits."""
    ids = ids_of((2, CHUNK + 30), seed=10)
    shared = engine.forward(ids)
    monkeypatch.setattr(lib.engine, "_BLAS", [])
    monkeypatch.setattr(lib.engine, "_helpers", Refusing())
    np.testing.assert_allclose(engine.forward(ids), shared, atol=1e-6, rtol=0)


def test_the_engine_works_in_a_forked_child(engine):
    """Helper threads do not survive a fork: the child makes its own instead of waiting forever."""
    ids = ids_of((2, CHUNK + 30), seed=7)
    expected = engine.forward(ids)  # the parent's helper threads are running now
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=lambda: results.put(engine.forward(ids)))
    child.start()
    try:
        np.testing.assert_array_equal(results.get(timeout=120), expected)
    finally:
        child.join(timeout=10)
        child.kill()


def test_the_engine_counts_the_cores_it_may_run_on():
    """A process held to one core (``taskset``, a container's cpuset) shares no work among threads:
    its helpers would wait for the one core it has."""
    held = subprocess.run(
        [sys.executable, "-c", "import lib.engine as E; print(E._CORES, E._helpers)"],
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
        capture_output=True,
        text=True,
        check=True,
    )
    assert held.stdout.split() == ["1", "None"]
