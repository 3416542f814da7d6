"""Chapter 6 (what a forward pass costs), what is particular to it: the reference counts, and an
exact count returned as a float.

The lib-derived references agree with weights actually allocated by ``lib.init_params``, with the
shipped models, with published counts and with ``KVCache.nbytes()``. What every exercise
guarantees (the reference passes, each known mistake is named, hard-coded answers fail the hidden
configs, stubs, concept checks) is in test_exercises.py.
"""

import math

import numpy as np
import pytest

import lib
from grader.check import CheckFailed, check
from grader.exercises import ch06
from grader.exercises.wrong import cost
from lib.checkpoint import checkpoint_layout
from lib.model import leaves

ASSIGNMENT = ch06.ASSIGNMENT

SMALL_CONFIGS = [
    ch06.TOY,
    ch06.SMALL_LLAMA,
    ch06.GPT2_UNTIED,
    lib.Config.gpt2(vocab_size=100, n_ctx=32, d_model=24, n_layer=2, n_head=3, d_ff=40),
    lib.Config.llama(
        vocab_size=50, n_ctx=16, d_model=16, n_layer=2, n_head=4, n_kv_head=1, d_ff=40, tie_embeddings=True
    ),
    lib.Config.llama(vocab_size=50, n_ctx=16, d_model=16, n_layer=1, n_head=4, n_kv_head=4, d_ff=24),
]


def exercise_id(exercise):
    return f"{ASSIGNMENT}/{exercise.name}"


# ---- the references against lib ----------------------------------------------------------------


@pytest.mark.parametrize(
    "config", SMALL_CONFIGS, ids=lambda c: f"{c.mlp}-{c.n_layer}-{c.n_kv_head}-{c.tie_embeddings}"
)
def test_counts_match_allocated_weights_and_the_checkpoint(config):
    allocated = sum(a.size for a in leaves(lib.init_params(config)))
    stored = sum(math.prod(shape) for shape, _, _ in checkpoint_layout(config).values())
    assert ch06.lib_param_count(config) == allocated == stored == cost.count_params(config)


def test_counts_of_shipped_models():
    toy = lib.load_pretrained("toy")
    assert ch06.lib_param_count(toy.config) == toy.num_params() == 280
    shakespeare = lib.load_pretrained("shakespeare")
    assert shakespeare.config == ch06.SHAKESPEARE
    assert ch06.lib_param_count(ch06.SHAKESPEARE) == shakespeare.num_params()


def test_published_counts():
    assert ch06.lib_param_count(ch06.GPT2_SMALL) == 124_439_808
    assert ch06.lib_param_count(ch06.LLAMA_7B) == 6_738_415_616
    for config in (ch06.GPT2_SMALL, ch06.GPT2_MEDIUM, ch06.LLAMA_7B, ch06.LLAMA_GQA_TIED, ch06.LLAMA_70B):
        assert ch06.lib_param_count(config) == cost.count_params(config)


def test_flops_of_the_toy():
    # N = 280 - 12 (wte) - 16 (wpe) = 252; 2N + 2 * L * T * d with L = 1, T = 4, d = 4
    assert ch06.lib_flops_per_token(ch06.TOY, 4) == 2 * 252 + 32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kv_bytes_match_the_cache(dtype):
    config = lib.Config.llama(vocab_size=50, n_ctx=16, d_model=16, n_layer=2, n_head=4, n_kv_head=2, d_ff=40)
    model = lib.Model(config, lib.init_params(config, dtype=dtype))
    cache = model.new_cache()
    model.forward(np.arange(7) % 50, cache=cache)
    assert cache.nbytes() == ch06.lib_kv_cache_bytes(config, 7, dtype)


# ---- the exercises -----------------------------------------------------------------------------


def test_a_count_returned_as_a_float_is_told_to_return_an_int():
    """The docstrings say "an int": an exact count returned as a float (after a /) is named, and a
    NumPy integer is an int."""
    with pytest.raises(CheckFailed, match=r"float \(float64\) where the docstring asks for an int"):
        check(exercise_id(ch06.COUNT_PARAMS), lambda config: float(cost.count_params(config)))
    check(exercise_id(ch06.COUNT_PARAMS), lambda config: np.int64(cost.count_params(config)))
