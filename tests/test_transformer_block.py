"""Chapter 2 (the transformer block), what is particular to it: its exercises are registered (its
stored references are checked with every chapter's in test_references.py); a wrong helper is named
as the first station that differs (in attention, multi-head attention, the MLP and the block); a
float64 constant that upcasts float32 is reported, and so is a list of the right values; and the
RoPE layout is lib's.

What every exercise guarantees (the reference passes, each known mistake is named, hard-coded
answers fail the hidden cases, stubs, float32 and float64 cases, concept checks) is in
test_exercises.py.
"""

import math

import numpy as np
import pytest
from helpers import graded

import lib
from grader.check import CheckFailed, check
from grader.exercises import ch02

A = ch02.ASSIGNMENT


def test_assignment_is_registered():
    names = [e.name for e in ch02.EXERCISES]
    assert {"layer_norm", "masked_scores", "attention", "multi_head_attention", "block", "apply_rope"} <= set(
        names
    )


# ---- the first station that differs names the student's helper --------------------------------


def good_split(x, n_head):
    return lib.split_heads(x, n_head)


def good_merge(x):
    return lib.merge_heads(x)


def good_attention(q, k, v):
    return lib.scaled_dot_product_attention(q, k, v, lib.causal_mask(q.shape[-2]))


def mha_from(split_heads, attention, merge_heads):
    def mha(x, params, n_head):
        q, k, v = np.split(x @ params["c_attn"]["w"] + params["c_attn"]["b"], 3, axis=-1)
        heads = attention(split_heads(q, n_head), split_heads(k, n_head), split_heads(v, n_head))
        return merge_heads(heads) @ params["c_proj"]["w"] + params["c_proj"]["b"]

    return mha


def bad_split(x, n_head):
    return -lib.split_heads(x, n_head)  # wrong in a way no Mistake knows


def bad_attention(q, k, v):
    return good_attention(q, k, v) * 2


def bad_merge(x):
    return lib.merge_heads(x[..., ::-1, :, :])  # heads in reverse order


@pytest.mark.parametrize(
    "broken, bad, station",
    [
        ("split_heads", bad_split, "attn.q"),
        ("attention", bad_attention, "attn.heads"),
        ("merge_heads", bad_merge, "attn.merged"),
    ],
)
def test_mha_names_the_wrong_helper(broken, bad, station):
    helpers = {"split_heads": good_split, "attention": good_attention, "merge_heads": good_merge, broken: bad}
    with pytest.raises(CheckFailed) as err:
        check(f"{A}/multi_head_attention", mha_from(**helpers), **helpers)
    assert f"reference: {station} (computed by your `{broken}`)" in str(err.value)


def test_attention_names_wrong_scores():
    def bad_scores(q, k):
        s = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1]) + 1
        return np.where(lib.causal_mask(q.shape[-2]), s, -np.inf)

    def fn(q, k, v):
        return lib.softmax(bad_scores(q, k) * 1.5, axis=-1) @ v

    with pytest.raises(CheckFailed) as err:
        check(f"{A}/attention", fn, masked_scores=bad_scores)
    assert "attn.scores_masked" in str(err.value)


def block_from(layer_norm, mha, mlp):
    def block(x, params, n_head):
        x = x + mha(layer_norm(x, **params["ln_1"]), params["attn"], n_head)
        return x + mlp(layer_norm(x, **params["ln_2"]), params["mlp"])

    return block


def good_ln(x, g, b, eps=1e-5):
    return lib.layer_norm(x, g, b, eps)


def good_mha(x, params, n_head):
    return mha_from(good_split, good_attention, good_merge)(x, params, n_head)


def good_mlp(x, params):
    return lib.mlp(x, params)


@pytest.mark.parametrize("broken", ["layer_norm", "multi_head_attention", "mlp"])
def test_block_names_the_wrong_sublayer(broken):
    helpers = {"layer_norm": good_ln, "multi_head_attention": good_mha, "mlp": good_mlp}
    good = helpers[broken]
    helpers[broken] = lambda *args, **kwargs: good(*args, **kwargs) * 0.5
    fn = block_from(helpers["layer_norm"], helpers["multi_head_attention"], helpers["mlp"])
    with pytest.raises(CheckFailed) as err:
        check(f"{A}/block", fn, **helpers)
    station = {"layer_norm": "ln_1", "multi_head_attention": "attn.out", "mlp": "mlp.out"}[broken]
    assert f"reference: {station} (computed by your `{broken}`)" in str(err.value)


def test_mlp_names_a_wrong_gelu():
    def bad_gelu(x):
        return lib.gelu(x) + 0.01

    def fn(x, params):
        return (
            bad_gelu(x @ params["c_fc"]["w"] + params["c_fc"]["b"]) @ params["c_proj"]["w"]
            + params["c_proj"]["b"]
        )

    with pytest.raises(CheckFailed) as err:
        check(f"{A}/mlp", fn, gelu=bad_gelu)
    assert "mlp.post_act" in str(err.value)


def test_dtype_upcast_is_reported():
    """A float64 scale constant (np.sqrt of an int) turns float32 scores into float64."""

    def upcast(q, k):
        s = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
        return np.where(np.tri(q.shape[-2], dtype=bool), s, -np.inf)

    with pytest.raises(CheckFailed) as err:
        check(f"{A}/masked_scores", upcast)
    assert "dtype" in str(err.value)


def test_a_list_of_the_right_values_is_named_by_the_check_and_by_the_grader():
    """NumPy reads a list of float32 numbers as float64: the message says a list came back, in the
    notebook and in the grader, where the output crossed the scorer's wall as an array."""

    def as_list(x, g, b, eps=1e-5):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return ((x - mean) / np.sqrt(var + eps) * g + b).tolist()

    with pytest.raises(CheckFailed, match="returned a list, which NumPy reads as float64"):
        check(f"{A}/layer_norm", as_list)
    verdict = graded(f"{A}/layer_norm", as_list)
    assert not verdict.ok and "returned a list, which NumPy reads as float64" in verdict.reason


def test_rope_layout_is_lib_halves():
    """The exercise follows lib: pairs (j, j + d_head/2), not the paper's neighbours."""
    x = np.zeros((2, 4))
    x[1, 0] = 1.0  # e_0 at position 1
    out = lib.apply_rope(x, np.arange(2))
    # feature 0 pairs with feature 2 = 0 + d_head/2: turning e_0 moves weight into feature 2 only
    assert np.allclose(out[1], [math.cos(1), 0, math.sin(1), 0])


def _norm_without_keepdims(x, g, b=0.0, eps=1e-5):
    centred = x - x.mean(axis=-1)
    return centred / np.sqrt((centred**2).mean(axis=-1) + eps) * g + b


@pytest.mark.parametrize(
    "exercise_id",
    ["02-transformer-block/layer_norm", "02-transformer-block/rms_norm", "05-worked-toy/toy_layer_norm"],
)
def test_a_norm_without_keepdims_gets_a_keepdims_hint(exercise_id):
    with pytest.raises(CheckFailed) as failed:
        check(exercise_id, _norm_without_keepdims)
    assert "could not be broadcast" in str(failed.value) and "keepdims=True" in str(failed.value), (
        failed.value
    )
