"""Each structural diagnosis (``grader.diagnosis``) names a mistake that no exercise lists.

For every diagnosis, wrong implementations in at least three exercises, made from the exercise's
reference by one structural change (an argument ignored, the first sequence's answer used for the
whole batch, every row off by its own constant, ...), get a message naming that change: from the
notebook's check, and from the grader, through ``compare.grade`` with its diagnosis pass
(``helpers.explained``). None of them is one of the exercise's known mistakes.
"""

import copy
import math

import numpy as np
import pytest
from catalogue import (
    BLOCK_HELPERS,
    C1,
    C2,
    C3,
    C4,
    C5,
    C6,
    MHA_HELPERS,
    TOY_HELPERS,
    attend_with_cache_keys_for_values,
    attend_with_cache_scaled_by_the_length,
    attention,
    block_mlp_unnormalised,
    block_two_heads,
    count_params_no_attention_output_projection,
    decode_drops_last,
    decode_global_table,
    decode_upper,
    encode_sorted,
    filtered_probs_top_p_temperature_top_k,
    flops_per_token_attention_d_head,
    gelu,
    layer_norm,
    masked_scores,
    merge_heads,
    mha_k_v_swapped,
    mlp,
    perplexity_inverse_mean_probability,
    sinusoidal_exponent_over_d_minus_one,
    sinusoidal_exponent_over_d_plus_two,
    softmax,
    split_heads,
    top_p_as_min_p,
    top_p_cumsum_of_logits,
    toy_attention_output_heads_reversed,
    toy_forward_head_wpe,
    toy_forward_mlp_unnormalised,
    toy_forward_one_head,
    toy_loss_summed_over_the_batch,
)
from helpers import everything_lent, explained, graded

from grader import exercises, variants
from grader.check import CheckFailed, check, check_called
from grader.diagnosis import core, driver, shapes

REGISTRY = exercises.registry()


# ---- wrong implementations made from a reference -------------------------------------------------


def student(exercise_id, name, answer):
    """A function of the exercise's inputs: ``answer(reference, inputs)``, a number returned as a
    NumPy number (a 0-d array, where the docstring asks for a number, is a mistake of its own)."""
    reference = REGISTRY[exercise_id].reference

    def fn(**inputs):
        with np.errstate(all="ignore"):
            out = answer(reference, inputs)
        return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out

    fn.__name__ = name
    return fn


def changed(exercise_id, name, change):
    """The reference's answer changed by ``change(output, inputs)``."""
    return student(exercise_id, name, lambda ref, inputs: change(np.array(ref(**inputs)), inputs))


def ignoring(exercise_id, argument, value):
    """Always ``value`` for ``argument``, whatever is passed."""
    return student(exercise_id, f"ignores_{argument}", lambda ref, inputs: ref(**{**inputs, argument: value}))


def first_sequence_everywhere(exercise_id):
    """The first sequence's answer for every sequence of a batch."""
    core = variants.batch_axes(REGISTRY[exercise_id])

    def answer(ref, inputs):
        extra = {n: inputs[n].ndim - k for n, k in core.items() if n in inputs and inputs[n].ndim > k}
        out = np.asarray(ref(**inputs))
        if not extra:
            return out
        first = np.asarray(ref(**{**inputs, **{n: inputs[n][(0,) * k] for n, k in extra.items()}}))
        return np.broadcast_to(first, out.shape).copy()

    return student(exercise_id, "first_sequence_everywhere", answer)


def in_dtype_only(exercise_id, dtype):
    """Off by a little when the inputs are of ``dtype``."""

    def change(out, inputs):
        arrays = [v for v in inputs.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
        return (out * 1.01).astype(out.dtype) if arrays and arrays[0].dtype == dtype else out

    return changed(exercise_id, f"wrong_in_{np.dtype(dtype).name}", change)


def overflowing(exercise_id):
    def change(out, inputs):
        large = any(
            isinstance(v, np.ndarray) and v.dtype.kind == "f" and np.abs(v[np.isfinite(v)]).max() > 50
            for v in inputs.values()
        )
        return np.full_like(out, np.nan, dtype=float).astype(out.dtype) if large else out

    return changed(exercise_id, "overflows", change)


def only_where(exercise_id, name, when, change):
    """The reference's answer, changed only on the cases ``when(inputs)`` picks."""
    return changed(exercise_id, name, lambda out, inputs: change(out, inputs) if when(inputs) else out)


def noisy(out, inputs):
    g = np.random.default_rng(0)
    return (out + g.normal(size=out.shape)).astype(out.dtype) if out.dtype.kind == "f" else out + 7


def _rows(out):
    return out.reshape(-1, out.shape[-1])


def restore(n):
    """``n`` more kept entries per row: the largest removed logits come back."""

    def change(out, inputs):
        logits = np.broadcast_to(inputs["logits"], out.shape)
        result, flat = _rows(out).copy(), _rows(logits)
        for row, source in zip(result, flat, strict=True):
            removed = np.flatnonzero(np.isneginf(row) & np.isfinite(source))
            for best in removed[np.argsort(-source[removed], kind="stable")][:n]:
                row[best] = source[best]
        return result.reshape(out.shape)

    return change


def roll_kept(out, inputs):
    """As many kept entries per row, moved one place along (with their values)."""
    return np.roll(out, 1, axis=-1) if np.isneginf(out).any() else out


def one_more_token(out, inputs):
    """One more token per row gets a probability (then every row renormalised)."""
    result = _rows(out).copy()
    for row in result:
        zero = np.flatnonzero(row == 0)
        if len(zero):
            row[zero[0]] = row.max() / 2
    result /= result.sum(axis=-1, keepdims=True)
    return result.reshape(out.shape).astype(out.dtype)


def first_neg_inf_to_zero(out, inputs):
    result = _rows(out).copy()
    for row in result:
        masked = np.flatnonzero(np.isneginf(row))
        if len(masked):
            row[masked[0]] = 0.0
    return result.reshape(out.shape)


def at(axis, index, out):
    """``out`` with noise at ``index`` along ``axis`` (the last axis for a 1-D output)."""
    result = out.astype(np.float64).copy()
    moved = np.moveaxis(result, axis if out.ndim >= -axis else -1, 0)
    moved[index] += np.random.default_rng(1).normal(size=moved[index].shape)
    return result.astype(out.dtype)


def shifted(out, inputs):
    return np.roll(out, 1, axis=-2 if out.ndim >= 2 else -1)


def per_row(out):
    rows = np.arange(int(np.prod(out.shape[:-1]))).reshape(out.shape[:-1] + (1,))
    return rows


def triangle(above):
    """Noise above (or below) the diagonal of the last two axes."""

    def change(out, inputs):
        rows, cols = np.indices(out.shape[-2:])
        noise = np.abs(np.random.default_rng(2).normal(size=out.shape)) * 0.1 + 0.01
        return np.where(cols > rows if above else cols < rows, out + noise, out).astype(out.dtype)

    return change


def times(exercise_id, name, factor):
    """The reference's answer times ``factor(inputs)``."""
    return changed(exercise_id, name, lambda out, inputs: (out * factor(inputs)).astype(out.dtype))


def to_the_power(exercise_id, name, power):
    """The reference's answer to the power ``power(inputs)``."""
    return changed(exercise_id, name, lambda out, inputs: (out ** power(inputs)).astype(out.dtype))


def plus_input(exercise_id, sign):
    """The reference's answer plus (or minus) the input ``x``."""
    return changed(exercise_id, "plus_x", lambda out, inputs: (out + sign * inputs["x"]).astype(out.dtype))


def plus_station(exercise_id, station, factor):
    """The reference's answer plus ``factor`` times one of its stations."""
    stations = REGISTRY[exercise_id].stations

    def change(out, inputs):
        return (out + factor * stations(copy.deepcopy(inputs))[station]).astype(out.dtype)

    return changed(exercise_id, f"plus_{station}", change)


def positions(inputs):
    return inputs["ids"].shape[-1] - 1  # the predictions a loss averages


def vocabulary(inputs):
    return inputs["logits"].shape[-1]


def width(inputs):
    return inputs["x"].shape[-1]


def swap_first_two(out, inputs):
    """The first two entries along axis -2 (-1 for a vector) swapped: the reference's values in
    another order, neither reversed nor shifted."""
    axis = -2 if out.ndim >= 2 else -1
    order = list(range(out.shape[axis]))
    order[0], order[1] = 1, 0
    return np.take(out, order, axis=axis)


def term_reversed(exercise_id, term):
    """The reference's answer with one of its terms (a station, or an input) added reversed along
    its axis -2 (-1 for a vector)."""
    stations = REGISTRY[exercise_id].stations

    def change(out, inputs):
        known = stations(copy.deepcopy(inputs)) if term not in inputs else {term: inputs[term]}
        t = np.asarray(known[term], np.float64)
        return (out - t + np.flip(t, -2 if t.ndim >= 2 else -1)).astype(out.dtype)

    return changed(exercise_id, f"{term.replace('.', '_')}_reversed", change)


def layer_norm_over_axis_minus_2(x, g, b, eps=1e-5):
    mean, var = x.mean(axis=-2, keepdims=True), x.var(axis=-2, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b


def rms_norm_over_axis_minus_2(x, g, eps=1e-6):
    return x / np.sqrt(np.mean(x * x, axis=-2, keepdims=True) + eps) * g


# ---- helpers fed the wrong inputs ------------------------------------------------------------------


def mha_merges_the_queries(x, params, n_head):
    q, k, v = np.split(x @ params["c_attn"]["w"] + params["c_attn"]["b"], 3, axis=-1)
    return merge_heads(split_heads(q, n_head)) @ params["c_proj"]["w"] + params["c_proj"]["b"]


def mlp_gelu_without_bias(x, params):
    return gelu(x @ params["c_fc"]["w"]) @ params["c_proj"]["w"] + params["c_proj"]["b"]


def attention_scores_of_k_and_q(q, k, v):
    s = masked_scores(k, q)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)) @ v


def attention_returns_its_weights(q, k, v):
    s = masked_scores(q, k)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def temperature_zero_as_a_tiny_one(logits, temperature):
    return logits / max(temperature, 1e-8)


def top_k_halves_the_rest(logits, k):
    if k is None or k >= logits.shape[-1]:
        return logits.copy()
    kth = np.sort(logits, axis=-1)[..., -k][..., None]
    return np.where(logits >= kth, logits, logits / 2)


def unmasked_scores(q, k):
    return q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1]).astype(q.dtype)


def filtered_logits(logits, temperature=1.0, top_k=None, top_p=None):
    import lib

    return lib.top_p_filter(lib.top_k_filter(lib.apply_temperature(logits, temperature), top_k), top_p)


def toy_masked_scores(ref, inputs):
    q, k = inputs["q"], inputs["k"]
    T = q.shape[-2]
    s = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1]).astype(q.dtype)
    return np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)


def position_embedding_of_columns(n_tokens, wpe):
    return wpe[:, :n_tokens]


def substituting(exercise_id, **used):
    """The reference on the case's inputs with each input ``used[name]`` where ``name`` belongs
    (``v=\"k\"``: the keys used as the values)."""
    label = "_".join(f"{other}_for_{name}" for name, other in used.items())
    return student(
        exercise_id, label, lambda ref, inputs: ref(**{**inputs, **{n: inputs[o] for n, o in used.items()}})
    )


def through_softmax(exercise_id, name, log):
    """The reference on the softmax (``log``: the log-softmax) of the input ``name``: the step
    applied after a softmax where it belongs before."""

    def answer(ref, inputs):
        x = inputs[name].astype(np.float64)
        z = x - x.max(axis=-1, keepdims=True)
        p = (
            z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
            if log
            else np.exp(z) / np.exp(z).sum(-1, keepdims=True)
        )
        return ref(**{**inputs, name: p.astype(inputs[name].dtype)})

    return student(exercise_id, f"{'log_' if log else ''}softmax_of_{name}_first", answer)


def heads_up_to_three(exercise_id):
    """Right for one, two or three heads, and for more, three heads: written for the head counts
    it was tried on."""
    return student(
        exercise_id,
        "heads_up_to_three",
        lambda ref, inputs: ref(**{**inputs, "n_head": min(inputs["n_head"], 3)}),
    )


# ---- the table: a fragment the message must hold, and the wrong implementations -------------------

DIAGNOSES = {
    "ignores `": [
        (f"{C2}/layer_norm", ignoring(f"{C2}/layer_norm", "eps", 1e-5), {}),
        (f"{C2}/rms_norm", ignoring(f"{C2}/rms_norm", "eps", 1e-6), {}),
        (f"{C2}/apply_rope", ignoring(f"{C2}/apply_rope", "theta", 10000.0), {}),
        (f"{C4}/generate", ignoring(f"{C4}/generate", "top_p", None), {}),
        (f"{C4}/generate", ignoring(f"{C4}/generate", "rng", np.random.default_rng(0)), {}),
        (f"{C4}/filtered_probs", ignoring(f"{C4}/filtered_probs", "top_k", None), {}),
        (f"{C6}/kv_cache_bytes", ignoring(f"{C6}/kv_cache_bytes", "dtype", np.dtype("float32")), {}),
    ],
    "right on one sequence": [
        (eid, first_sequence_everywhere(eid), {})
        for eid in (
            f"{C2}/layer_norm",
            f"{C1}/token_embedding",
            f"{C3}/softmax",
            f"{C3}/cross_entropy",
            f"{C4}/top_k_filter",
        )
    ],
    "right in float64, wrong in float32": [
        (eid, in_dtype_only(eid, np.float32), {})
        for eid in (f"{C2}/layer_norm", f"{C2}/gelu", f"{C3}/softmax")
    ],
    "right in float32, wrong in float64": [
        (eid, in_dtype_only(eid, np.float64), {})
        for eid in (f"{C2}/layer_norm", f"{C2}/gelu", f"{C3}/log_softmax")
    ],
    "NaN or inf on large values": [
        (eid, overflowing(eid), {})
        for eid in (f"{C3}/softmax", f"{C3}/log_softmax", f"{C3}/cross_entropy", f"{C3}/perplexity")
    ],
    "transposed": [
        (eid, changed(eid, "transposed", lambda out, inputs: np.swapaxes(out, -1, -2).copy()), {})
        for eid in (
            f"{C2}/masked_scores",
            f"{C1}/position_embedding",
            f"{C2}/layer_norm",
            f"{C5}/toy_attention_probs",
        )
    ],
    "axes in the order": [
        (
            f"{C5}/toy_qkv",
            changed(f"{C5}/toy_qkv", "axes", lambda out, inputs: out.transpose(1, 0, 2, 3).copy()),
            {},
        ),
        (
            f"{C2}/split_heads",
            changed(f"{C2}/split_heads", "axes", lambda out, inputs: np.moveaxis(out, -1, -3).copy()),
            {},
        ),
        (
            f"{C5}/toy_attention_probs",
            changed(f"{C5}/toy_attention_probs", "axes", lambda out, inputs: np.moveaxis(out, -1, 0).copy()),
            {},
        ),
    ],
    "another order (": [
        (eid, changed(eid, "first_two_swapped", swap_first_two), {})
        for eid in (
            f"{C1}/encode",
            f"{C1}/position_embedding",
            f"{C2}/layer_norm",
            f"{C5}/toy_attention_probs",
        )
    ],
    "in another order along its axis": [
        (f"{C1}/embed", term_reversed(f"{C1}/embed", "embed.pos"), {}),
        (f"{C2}/block", term_reversed(f"{C2}/block", "attn.out"), {}),
        (f"{C2}/layer_norm", term_reversed(f"{C2}/layer_norm", "b"), {}),
        (f"{C5}/toy_mlp", term_reversed(f"{C5}/toy_mlp", "b_proj"), {}),
    ],
    "right only when `": [
        (eid, only_where(eid, "fixed_n_head", lambda i: i["n_head"] != 2, noisy), {})
        for eid in (f"{C2}/block", f"{C2}/multi_head_attention")
    ]
    + [(f"{C4}/top_k_filter", only_where(f"{C4}/top_k_filter", "fixed_k", lambda i: i["k"] != 3, noisy), {})],
    "in place of `": [
        (f"{C2}/attention", substituting(f"{C2}/attention", v="k"), {}),
        (f"{C5}/toy_attention_probs", substituting(f"{C5}/toy_attention_probs", k="q"), {}),
        (f"{C4}/attend_with_cache", attend_with_cache_keys_for_values, {}),
    ],
    "what the reference gives on log-probabilities": [
        (eid, through_softmax(eid, "logits", log=True), {})
        for eid in (f"{C4}/apply_temperature", f"{C4}/top_p_filter", f"{C4}/top_k_filter")
    ],
    "what the reference gives on probabilities": [
        (eid, through_softmax(eid, "logits", log=False), {})
        for eid in (f"{C4}/apply_temperature", f"{C4}/top_k_filter", f"{C4}/top_p_filter")
    ],
    "does your code handle only the values of `n_head` it was tried on": [
        (eid, heads_up_to_three(eid), {})
        for eid in (f"{C2}/split_heads", f"{C2}/multi_head_attention", f"{C2}/block")
    ],
    "reversed along axis": [
        (eid, changed(eid, "reversed", lambda out, inputs: np.flip(out, -2).copy()), {})
        for eid in (f"{C1}/token_embedding", f"{C2}/layer_norm", f"{C1}/embed")
    ],
    "shifted by one": [
        (eid, changed(eid, "shifted", shifted), {})
        for eid in (f"{C1}/embed", f"{C1}/sinusoidal_positions", f"{C2}/layer_norm", f"{C2}/gelu")
    ],
    "times 3 ": [
        (eid, changed(eid, "tripled", lambda out, inputs: out * out.dtype.type(3)), {})
        for eid in (f"{C2}/gelu", f"{C3}/softmax", f"{C2}/layer_norm", f"{C2}/mlp")
    ],
    "plus 0.3 everywhere": [
        (eid, changed(eid, "offset", lambda out, inputs: out + out.dtype.type(0.3)), {})
        for eid in (f"{C2}/gelu", f"{C2}/layer_norm", f"{C3}/lm_head", f"{C3}/log_softmax")
    ],
    "off by a constant of its own": [
        (
            eid,
            changed(eid, "row_offset", lambda out, inputs: (out + 0.1 * per_row(out)).astype(out.dtype)),
            {},
        )
        for eid in (f"{C3}/log_softmax", f"{C3}/lm_head", f"{C2}/layer_norm")
    ],
    "times a factor of its own": [
        (
            eid,
            changed(
                eid, "row_factor", lambda out, inputs: (out * (1 + 0.1 * per_row(out))).astype(out.dtype)
            ),
            {},
        )
        for eid in (f"{C3}/softmax", f"{C2}/layer_norm", f"{C2}/mlp")
    ],
    "off by the same vector": [
        (
            eid,
            changed(
                eid, "bias", lambda out, inputs: (out + np.linspace(-1, 1, out.shape[-1])).astype(out.dtype)
            ),
            {},
        )
        for eid in (f"{C2}/layer_norm", f"{C2}/mlp", f"{C5}/toy_mlp", f"{C1}/embed")
    ],
    "same factor per feature": [
        (
            eid,
            changed(
                eid,
                "gain",
                lambda out, inputs: (out * np.linspace(0.5, 1.5, out.shape[-1])).astype(out.dtype),
            ),
            {},
        )
        for eid in (f"{C2}/layer_norm", f"{C2}/mlp", f"{C1}/token_embedding")
    ],
    "where the reference divides by": [
        (
            f"{C3}/cross_entropy",
            times(f"{C3}/cross_entropy", "over_T", lambda i: positions(i) / (positions(i) + 1)),
            {},
        ),
        (
            f"{C5}/toy_loss",
            times(f"{C5}/toy_loss", "over_V", lambda i: (vocabulary(i) - 1) / vocabulary(i)),
            {},
        ),
        (f"{C2}/layer_norm", times(f"{C2}/layer_norm", "over_d", lambda i: (width(i) - 1) / width(i)), {}),
    ],
    "the reference divided by": [
        (eid, times(eid, "over_count", lambda i, count=count: 1 / count(i)), {})
        for eid, count in (
            (f"{C3}/cross_entropy", vocabulary),
            (f"{C5}/toy_loss", vocabulary),
            (f"{C2}/layer_norm", width),
        )
    ],
    "to the power": [
        (
            f"{C3}/perplexity",
            to_the_power(f"{C3}/perplexity", "over_T", lambda i: positions(i) / (positions(i) + 1)),
            {},
        ),
        (f"{C3}/softmax", to_the_power(f"{C3}/softmax", "base_2", lambda i: math.log(2)), {}),
        (
            f"{C5}/toy_loss",
            to_the_power(f"{C5}/toy_loss", "over_V", lambda i: (vocabulary(i) - 1) / vocabulary(i)),
            {},
        ),
    ],
    "plus the input `x`": [
        (eid, plus_input(eid, 1), {})
        for eid in (f"{C2}/mlp", f"{C5}/toy_mlp", f"{C2}/layer_norm", f"{C2}/multi_head_attention")
    ],
    "minus the input `x`": [
        (eid, plus_input(eid, -1), {}) for eid in (f"{C2}/mlp", f"{C5}/toy_mlp", f"{C2}/layer_norm")
    ],
    "you returned probabilities": [
        (
            eid,
            changed(
                eid,
                "softmaxed",
                lambda out, inputs: (
                    np.exp(out - out.max(-1, keepdims=True))
                    / np.exp(out - out.max(-1, keepdims=True)).sum(-1, keepdims=True)
                ).astype(out.dtype),
            ),
            {},
        )
        for eid in (f"{C5}/toy_mlp", f"{C2}/gelu", f"{C2}/swiglu")
    ],
    "exp of the reference": [
        (eid, changed(eid, "exp", lambda out, inputs: np.exp(out)), {})
        for eid in (f"{C3}/log_softmax", f"{C2}/layer_norm", f"{C2}/gelu")
    ],
    "close, but not within the tolerance": [
        (eid, changed(eid, "rounded", lambda out, inputs: (out * (1 + 3e-5)).astype(out.dtype)), {})
        for eid in (f"{C1}/sinusoidal_positions", f"{C2}/gelu", f"{C2}/layer_norm")
    ],
    "only at index 0 along axis": [
        (eid, changed(eid, "first", lambda out, inputs: at(-2, 0, out)), {})
        for eid in (f"{C2}/layer_norm", f"{C1}/embed", f"{C2}/mlp")
    ],
    "only at the last index along axis": [
        (eid, changed(eid, "last", lambda out, inputs: at(-2, -1, out)), {})
        for eid in (f"{C2}/layer_norm", f"{C1}/embed", f"{C2}/mlp")
    ],
    "only at the odd indices along axis -1": [
        (eid, changed(eid, "odd", lambda out, inputs: at(-1, slice(1, None, 2), out)), {})
        for eid in (f"{C2}/layer_norm", f"{C2}/gelu", f"{C1}/sinusoidal_positions")
    ],
    "only below the diagonal": [
        (eid, changed(eid, "below", triangle(above=False)), {})
        for eid in (f"{C2}/masked_scores", f"{C3}/softmax", f"{C3}/log_softmax")
    ],
    "only above the diagonal": [
        (eid, changed(eid, "above", triangle(above=True)), {})
        for eid in (f"{C5}/toy_attention_probs", f"{C3}/softmax", f"{C2}/layer_norm")
    ],
    "NaN exactly where the reference has 0": [
        (
            eid,
            only_where(
                eid,
                "nan_at_zero",
                lambda inputs: True,
                lambda out, inputs: np.where(out == 0, np.nan, out).astype(out.dtype),
            ),
            {},
        )
        for eid in (f"{C5}/toy_attention_probs", f"{C4}/filtered_probs", f"{C3}/softmax")
    ],
    "whole rows are NaN": [
        (
            eid,
            changed(
                eid, "nan_row", lambda out, inputs: np.where(per_row(out) == 0, np.nan, out).astype(out.dtype)
            ),
            {},
        )
        for eid in (f"{C5}/toy_attention_probs", f"{C3}/softmax", f"{C2}/layer_norm")
    ],
    "NaN everywhere": [
        (eid, changed(eid, "nan", lambda out, inputs: np.full_like(out, np.nan)), {})
        for eid in (f"{C3}/softmax", f"{C2}/gelu", f"{C2}/mlp")
    ],
    "large negative numbers": [
        (
            eid,
            changed(eid, "big", lambda out, inputs: np.where(np.isneginf(out), -1e9, out).astype(out.dtype)),
            {},
        )
        for eid in (f"{C4}/top_k_filter", f"{C4}/top_p_filter", f"{C4}/apply_temperature")
    ],
    "0 where the reference has -inf": [
        (eid, changed(eid, "zero", first_neg_inf_to_zero), {})
        for eid in (
            f"{C2}/masked_scores",
            f"{C4}/top_k_filter",
            f"{C4}/top_p_filter",
            f"{C4}/apply_temperature",
        )
    ],
    "more entr": [
        (f"{C4}/top_k_filter", changed(f"{C4}/top_k_filter", "two_more", restore(2)), {}),
        (f"{C4}/top_p_filter", changed(f"{C4}/top_p_filter", "one_more", restore(1)), {}),
        (f"{C4}/filtered_probs", changed(f"{C4}/filtered_probs", "one_more", one_more_token), {}),
    ],
    "but not the same ones": [
        (eid, changed(eid, "moved", roll_kept), {})
        for eid in (f"{C4}/top_k_filter", f"{C4}/top_p_filter", f"{C4}/apply_temperature")
    ],
    "which has what they do not": [
        (f"{C6}/kv_cache_bytes", only_where(f"{C6}/kv_cache_bytes", "one", lambda i: i["T"] == 1, noisy), {}),
        (
            f"{C6}/flops_per_token",
            only_where(f"{C6}/flops_per_token", "one", lambda i: i["T"] == 1, noisy),
            {},
        ),
        (
            f"{C4}/generate",
            only_where(
                f"{C4}/generate",
                "stop0",
                lambda i: i["stop_token"] == 0,
                lambda out, i: out + (np.arange(len(out)) == len(out) - 1),
            ),
            {},
        ),
        (
            f"{C2}/layer_norm",
            only_where(f"{C2}/layer_norm", "quiet", lambda i: np.abs(i["x"]).max() < 0.05, noisy),
            {},
        ),
    ],
    "entries too few along axis": [
        (
            f"{C1}/position_embedding",
            changed(f"{C1}/position_embedding", "short", lambda out, inputs: out[:-2]),
            {},
        ),
        (f"{C1}/embed", changed(f"{C1}/embed", "short", lambda out, inputs: out[..., :-2, :]), {}),
        (
            f"{C1}/sinusoidal_positions",
            changed(f"{C1}/sinusoidal_positions", "short", lambda out, inputs: out[:, :-2]),
            {},
        ),
    ],
    "one entry too few along axis": [
        (f"{C2}/layer_norm", changed(f"{C2}/layer_norm", "short", lambda out, inputs: out[..., :-1]), {}),
        (f"{C1}/embed", changed(f"{C1}/embed", "short", lambda out, inputs: out[..., :-1, :]), {}),
        (
            f"{C1}/sinusoidal_positions",
            changed(f"{C1}/sinusoidal_positions", "short", lambda out, inputs: out[:, :-1]),
            {},
        ),
    ],
    "as many entries as along axis": [
        (f"{C2}/attention", attention_returns_its_weights, {}),
        (
            f"{C2}/layer_norm",
            changed(f"{C2}/layer_norm", "gram", lambda out, inputs: out @ out.swapaxes(-1, -2)),
            {},
        ),
        (f"{C1}/embed", changed(f"{C1}/embed", "gram", lambda out, inputs: out @ out.swapaxes(-1, -2)), {}),
    ],
    "removes none": [
        (f"{C4}/apply_temperature", temperature_zero_as_a_tiny_one, {}),
        (f"{C4}/top_k_filter", top_k_halves_the_rest, {}),
        (f"{C2}/masked_scores", unmasked_scores, {}),
    ],
    "take their softmax": [
        (f"{C4}/filtered_probs", filtered_logits, {}),
        (f"{C5}/toy_attention_probs", student(f"{C5}/toy_attention_probs", "scores", toy_masked_scores), {}),
        (
            f"{C3}/softmax",
            only_where(f"{C3}/softmax", "masked", lambda i: np.isneginf(i["x"]).any(), lambda out, i: i["x"]),
            {},
        ),
    ],
    "arrays together": [
        (f"{C3}/lm_head", changed(f"{C3}/lm_head", "pair", lambda out, inputs: np.stack([out, out])), {}),
        (f"{C1}/embed", changed(f"{C1}/embed", "pair", lambda out, inputs: np.stack([out, out])), {}),
        (
            f"{C2}/layer_norm",
            changed(f"{C2}/layer_norm", "pair", lambda out, inputs: np.stack([out, out])),
            {},
        ),
    ],
    "check which axes your result has": [
        (f"{C2}/layer_norm", changed(f"{C2}/layer_norm", "cut", lambda out, inputs: out[..., 1:, 1:]), {}),
        (f"{C1}/position_embedding", position_embedding_of_columns, {}),
        (f"{C5}/toy_mlp", changed(f"{C5}/toy_mlp", "cut", lambda out, inputs: out[..., 1:, 1:]), {}),
    ],
    "is right, but `": [
        (f"{C2}/block", block_mlp_unnormalised, BLOCK_HELPERS),
        (f"{C5}/toy_forward", toy_forward_mlp_unnormalised, TOY_HELPERS),
        (f"{C2}/multi_head_attention", mha_merges_the_queries, MHA_HELPERS),
        (f"{C2}/mlp", mlp_gelu_without_bias, {"gelu": gelu}),
        (f"{C2}/attention", attention_scores_of_k_and_q, {"masked_scores": masked_scores}),
    ],
}
# Text has one exercise, decode: its three diagnoses are tested there only.
TEXT = [
    ("ignores `itos`", decode_global_table),
    ("without its last character", decode_drops_last),
    ("not their case", decode_upper),
]
CASES = [
    (fragment, eid, fn, helpers) for fragment, entries in DIAGNOSES.items() for eid, fn, helpers in entries
]


def check_message(exercise_id, fn, helpers) -> str:
    with everything_lent(), pytest.raises(CheckFailed) as failed:
        check(exercise_id, fn, **helpers)
    return str(failed.value)


def known_hints(exercise_id) -> list[str]:
    exercise = REGISTRY[exercise_id]
    return [m.hint for m in exercise.mistakes]


def test_each_diagnosis_is_tested_in_three_exercises():
    for fragment, entries in DIAGNOSES.items():
        assert len({eid for eid, _, _ in entries}) >= 3, fragment


@pytest.mark.parametrize(
    "fragment, exercise_id, fn, helpers",
    CASES,
    ids=[f"{f.strip('` ')}-{e}-{fn.__name__}" for f, e, fn, _ in CASES],
)
def test_the_diagnosis_names_the_mistake_in_the_check_and_in_grading(fragment, exercise_id, fn, helpers):
    names_it(fragment, exercise_id, fn, helpers)


def names_it(fragment, exercise_id, fn, helpers) -> None:
    """The check and the grader both name the mistake by ``fragment``, and neither offers a listed
    mistake instead."""
    message = check_message(exercise_id, fn, helpers)
    assert fragment in message, message
    verdict = explained(exercise_id, fn, helpers=helpers)
    assert not verdict.ok and fragment in verdict.reason, verdict.reason
    assert not any(hint in message or hint in verdict.reason for hint in known_hints(exercise_id)), (
        "a listed mistake"
    )


@pytest.mark.parametrize(
    "exercise_id, station, factor, words",
    [
        (f"{C1}/embed", "embed.tok", -0.5, "embed.tok enters your output times 0.5 (= 1/2)"),
        (f"{C2}/block", "attn.out", -0.5, "attn.out enters your output times 0.5 (= 1/2)"),
        (f"{C2}/block", "mlp.out", -1.0, "your output is the reference minus mlp.out"),
    ],
)
def test_a_station_counted_the_wrong_number_of_times_is_named(exercise_id, station, factor, words):
    fn = plus_station(exercise_id, station, factor)
    assert words in check_message(exercise_id, fn, {})
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_a_factor_of_two_or_three_on_an_array_is_not_told_it_is_a_count():
    """On an array, 2 and 3 are constants as often as counts: only a scalar's is read as one."""
    fn = times(f"{C3}/softmax", "tripled", lambda i: 3)
    message = check_message(f"{C3}/softmax", fn, {})
    assert "times 3 everywhere" in message and "divide" not in message, message


@pytest.mark.parametrize(
    "exercise_id, fn, words",
    [
        (
            f"{C6}/count_params",
            count_params_no_attention_output_projection,
            "short by exactly the size of `attn.c_proj` (all its tensors, in every block)",
        ),
        (
            f"{C6}/count_params",
            changed(
                f"{C6}/count_params",
                "c_fc_twice",
                lambda out, i: (
                    out
                    + (i["config"].mlp == "gelu")
                    * i["config"].d_model
                    * i["config"].d_ff
                    * i["config"].n_layer
                ),
            ),
            "over by exactly the size of `mlp.c_fc` (its weight, in every block)",
        ),
        (
            f"{C6}/flops_per_token",
            changed(
                f"{C6}/flops_per_token",
                "no_c_proj",
                lambda out, i: out - 2 * i["config"].n_layer * i["config"].d_model ** 2,
            ),
            "short by exactly the size of `attn",
        ),
    ],
)
def test_a_count_off_by_one_tensor_of_the_checkpoint_names_it(exercise_id, fn, words):
    assert words in check_message(exercise_id, fn, {})
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and words in verdict.reason, verdict.reason


@pytest.mark.parametrize(
    "exercise_id, fn",
    [(f"{C2}/layer_norm", layer_norm_over_axis_minus_2), (f"{C2}/rms_norm", rms_norm_over_axis_minus_2)],
)
def test_a_norm_over_another_axis_is_named(exercise_id, fn):
    """(toy_layer_norm lists this mistake: its hint comes first there.)"""
    assert "normalised over axis -2" in check_message(exercise_id, fn, {})
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and "normalised over axis -2" in verdict.reason, verdict.reason


@pytest.mark.parametrize("fn", [sinusoidal_exponent_over_d_minus_one, sinusoidal_exponent_over_d_plus_two])
@pytest.mark.parametrize("secret", range(5))
def test_a_value_whose_case_is_degenerate_is_not_called_written_in(fn, secret):
    """A wrong exponent is right where d = 2 (one frequency, exponent 0 whatever the formula), and
    some students' hidden cases have d = 2 twice: the code reads d (its output has d columns, not
    2), so "is 2 written in where `d` belongs?" is not said; the wrong entries are located."""
    verdict = explained(f"{C1}/sinusoidal_positions", fn, secret)
    assert not verdict.ok and "right only when" not in verdict.reason, verdict.reason
    assert "everywhere but index 0" in verdict.reason, verdict.reason


def test_a_number_of_heads_written_in_is_named_when_the_function_raises():
    """Two heads written in: right where n_head is 2, a reshape error where it is not."""
    message = check_message(f"{C2}/block", block_two_heads, BLOCK_HELPERS)
    assert "right only when `n_head` == 2" in message, message
    verdict = explained(f"{C2}/block", block_two_heads, helpers=BLOCK_HELPERS)
    assert not verdict.ok and "right only when `n_head` == 2" in verdict.reason, verdict.reason


def test_heads_taken_in_reverse_order_before_a_projection_are_named():
    """Heads reversed, then merged and projected: the output holds no value of the reference's,
    but the function is right on its inputs reversed along the heads' axis."""
    words = "when `probs`, `v` come reversed along axis -3"
    message = check_message(f"{C5}/toy_attention_output", toy_attention_output_heads_reversed, {})
    assert words in message, message
    verdict = explained(f"{C5}/toy_attention_output", toy_attention_output_heads_reversed)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_the_values_of_the_reference_sorted_are_named():
    message = check_message(f"{C1}/encode", encode_sorted, {})
    assert "sorted in ascending order" in message, message


@pytest.mark.parametrize("fragment, fn", TEXT, ids=[fn.__name__ for _, fn in TEXT])
def test_text_diagnoses(fragment, fn):
    exercise_id = f"{C1}/decode"
    assert fragment in check_message(exercise_id, fn, {})
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and fragment in verdict.reason, verdict.reason


def test_the_grader_without_its_second_pass_still_explains_what_the_output_shows():
    """The first pass has no variants: relations that the output shows are named already."""
    fn = changed(f"{C2}/gelu", "tripled", lambda out, inputs: out * out.dtype.type(3))
    assert "times 3 " in graded(f"{C2}/gelu", fn).reason


@pytest.mark.parametrize(
    "exercise_id", [f"{C2}/layer_norm", f"{C3}/softmax", f"{C1}/decode", f"{C6}/count_params"]
)
def test_a_missing_return_is_named(exercise_id):
    reference = REGISTRY[exercise_id].reference

    def forgets_to_return(**inputs):
        reference(**inputs)

    assert "is a `return` missing?" in check_message(exercise_id, forgets_to_return, {})
    verdict = explained(exercise_id, forgets_to_return)
    assert not verdict.ok and "is a `return` missing?" in verdict.reason, verdict.reason


def test_characters_not_joined_are_named():
    def characters(ids, itos):
        return [itos[int(i)] for i in ids]

    assert '"".join' in check_message(f"{C1}/decode", characters, {})
    assert "returned a list" in explained(f"{C1}/decode", characters).reason


STRUCTURAL = ("n_head", "n_kv_head", "d_head")  # sizes a student may write in as a number


def _structural_fixed():
    """(exercise, argument, value) for each value a visible case gives a structural argument,
    where a function with that value written in loses points."""
    found = []
    for exercise_id, exercise in sorted(REGISTRY.items()):
        if exercise.kind != "array":
            continue
        for name in STRUCTURAL:
            seen = [c.inputs[name] for c in exercise.cases() if name in c.inputs]
            if len(set(seen)) > 1:
                found += [(exercise_id, name, value) for value in sorted(set(seen))]
    return found


@pytest.mark.parametrize("exercise_id, name, value", _structural_fixed())
def test_a_structural_number_written_in_is_named_in_the_check_and_in_grading(exercise_id, name, value):
    """`n_head` (or `n_kv_head`, `d_head`) written in as a number the visible cases use: right
    where the argument has that value, wrong (or an error) where it has another. Whatever the
    value, and however many visible cases have it, both the check and the grader name the number."""
    reference = REGISTRY[exercise_id].reference

    def written_in(**inputs):
        return reference(**{**inputs, name: value})

    words = f"right only when `{name}` == {value}"
    with everything_lent(), pytest.raises(CheckFailed) as failed:
        check_called(exercise_id, written_in)
    assert words in str(failed.value), str(failed.value)
    verdict = explained(exercise_id, written_in, runner=False)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def _mha_heads_in_order(order):
    """Multi-head attention with the heads taken in ``order(n_head)`` before the projection."""

    def fn(x, params, n_head):
        q, k, v = np.split(x @ params["c_attn"]["w"] + params["c_attn"]["b"], 3, axis=-1)
        heads = attention(split_heads(q, n_head), split_heads(k, n_head), split_heads(v, n_head))
        heads = np.take(heads, order(n_head), axis=-3)
        return merge_heads(heads) @ params["c_proj"]["w"] + params["c_proj"]["b"]

    return fn


MHA_ROLLED = _mha_heads_in_order(lambda n: np.roll(np.arange(n), 1))
MHA_EVEN_ODD = _mha_heads_in_order(lambda n: np.r_[np.arange(0, n, 2), np.arange(1, n, 2)])


def block_heads_rolled(x, params, n_head):
    h = x + MHA_ROLLED(layer_norm(x, **params["ln_1"]), params["attn"], n_head)
    return h + mlp(layer_norm(h, **params["ln_2"]), params["mlp"])


@pytest.mark.parametrize(
    "exercise_id, fn, helpers",
    [
        (f"{C2}/multi_head_attention", MHA_ROLLED, MHA_HELPERS),
        (f"{C2}/multi_head_attention", MHA_EVEN_ODD, MHA_HELPERS),
        (f"{C2}/block", block_heads_rolled, BLOCK_HELPERS),
    ],
    ids=["mha-rolled", "mha-even-odd", "block-rolled"],
)
def test_heads_in_another_order_before_the_projection_are_named(exercise_id, fn, helpers):
    """Heads rolled by one, or even ones first, then merged and projected: the output holds no
    value of the reference's, but the function is right when the projection's rows come by head
    in the order that undoes it."""
    words = "merges the heads in another order"
    message = check_message(exercise_id, fn, helpers)
    assert words in message, message
    verdict = explained(exercise_id, fn, helpers=helpers)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_an_output_packed_with_a_term_that_broadcasts_is_diagnosed_without_an_error():
    """attend_with_cache packs (output, k, v) along axis -2; an input such as `q_new` (H, 1, d)
    broadcasts against it along that axis. Values taken from the keys (weights @ k): the check
    fails with a message, not with NumPy's broadcast error, and so does the grader; the message
    says which returned array is wrong and what it was computed from."""
    exercise_id = f"{C4}/attend_with_cache"
    words = (
        "your `out` is what the reference gives with `k_new` in place of `v_new` and `cache_k` in place of"
    )
    message = check_message(exercise_id, attend_with_cache_keys_for_values, {})
    assert words in message, message
    verdict = explained(exercise_id, attend_with_cache_keys_for_values)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_the_order_of_a_wide_output_is_found_with_one_comparison_per_slice(monkeypatch):
    """A hidden case can be 2,046 wide (sinusoidal positions): the slices of an output in another
    order are paired by sorting, not by trying every pair (which took millions of comparisons)."""
    rng = np.random.default_rng(1)
    e = rng.normal(size=(5, 2046)).astype(np.float32)
    order = rng.permutation(2046)
    calls = []
    near = shapes._near
    monkeypatch.setattr(shapes, "_near", lambda x, y: calls.append(1) or near(x, y))
    assert shapes._axis_order(e[:, order], e, -1) == order.tolist()
    assert len(calls) == 2046
    assert shapes._axis_order(e[::-1], e, 0) == [4, 3, 2, 1, 0]
    assert shapes._axis_order(e, e, 0) is None
    assert shapes._axis_order(e[:, order] + 1, e, -1) is None


def test_a_threshold_on_another_scale_is_not_told_its_argument_is_ignored():
    """top-p over a running sum of the logits, not of the probabilities: p reaches the output but
    hardly matters (the sums are large or negative), so the output is the reference's for p = 1
    on some cases and p close to 0 on others. Not "ignores `p`": what p is compared with is named."""
    exercise_id = f"{C4}/top_p_filter"
    words = "behaves as if `p` were"
    message = check_message(exercise_id, top_p_cumsum_of_logits, {})
    assert words in message and "ignores" not in message, message
    verdict = explained(exercise_id, top_p_cumsum_of_logits)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_an_argument_at_the_same_end_of_its_range_everywhere_is_still_ignored():
    """A top-p that keeps every token, whatever p: the reference's for p = 1 on every case it gets
    wrong, as a function that ignores p is; it is told so."""

    def keeps_all(logits, p):
        return logits.copy()

    message = check_message(f"{C4}/top_p_filter", keeps_all, {})
    assert "ignores `p`" in message, message


def test_head_counts_are_visible_wherever_hidden():
    """A head count a hidden case uses is one a visible case uses: a function written for the
    counts it was tried on (a cap at three heads) fails the check, not only the grader."""
    for exercise_id in (f"{C2}/split_heads", f"{C2}/multi_head_attention", f"{C2}/block"):
        exercise = REGISTRY[exercise_id]
        visible = {c.inputs["n_head"] for c in exercise.cases()}
        for secret in range(20):
            hidden = {c.inputs["n_head"] for c in exercise.cases(secret) if c.hidden}
            assert hidden <= visible, (exercise_id, hidden - visible)


def _attend_with_cache_out_bent(q_new, k_new, v_new, cache_k, cache_v):
    """The caches right, `out` bent by a function no rule names."""
    out, k, v = _attend_with_cache_right(q_new, k_new, v_new, cache_k, cache_v)
    return np.sin(3 * out) + out, k, v


def _attend_with_cache_right(q_new, k_new, v_new, cache_k, cache_v):
    k, v = np.concatenate([cache_k, k_new], axis=-2), np.concatenate([cache_v, v_new], axis=-2)
    T, S = q_new.shape[-2], cache_k.shape[-2]
    s = q_new @ k.swapaxes(-1, -2) / math.sqrt(q_new.shape[-1])
    s = np.where(np.tri(T, S + T, k=S, dtype=bool), s, -np.inf)
    weights = np.exp(s - s.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)) @ v, k, v


def test_which_of_the_returned_arrays_is_wrong_is_named():
    """attend_with_cache returns (out, cache_k, cache_v), packed into one array along axis -2:
    `out` wrong in a way nothing names and the caches right: which array is wrong is said; not
    "wrong only at index 0 along axis -2"."""
    exercise_id = f"{C4}/attend_with_cache"
    words = "of the arrays you return, `out` is wrong and `cache_k`, `cache_v` are right"
    message = check_message(exercise_id, _attend_with_cache_out_bent, {})
    assert words in message, message
    verdict = explained(exercise_id, _attend_with_cache_out_bent)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def _sample_next_without(setting):
    def sample_next(logits, rng, temperature=1.0, top_k=None, top_p=None):
        import lib

        given = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        given.pop(setting)
        if given.get("temperature", 1.0) == 0 or given.get("top_k") == 1:
            return int(np.argmax(logits))
        probs = lib.filtered_probs(logits, **given).astype(np.float64)
        return int(
            min(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), side="right"), len(probs) - 1)
        )

    sample_next.__name__ = f"sample_next_without_{setting}"
    return sample_next


@pytest.mark.parametrize("setting", ["top_p"])  # the others are listed mistakes
def test_a_setting_a_sampler_leaves_out_is_named(setting):
    """sample_next's settings come in a list of dicts (its runner's `settings`), which no variant
    changes: a sampler that never passes one of them on gets the reference's output without it,
    and is told it ignores that setting (not that it keeps more entries than the reference)."""
    exercise_id = f"{C4}/sample_next"
    words = f"with `{setting}` left out of `settings`: your function ignores `{setting}`"
    fn = _sample_next_without(setting)
    message = check_message(exercise_id, fn, {})
    assert words in message, message
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and words in verdict.reason, verdict.reason


@pytest.mark.parametrize(
    "exercise_id, fn",
    [
        (f"{C5}/toy_loss", toy_loss_summed_over_the_batch),
        (
            f"{C3}/cross_entropy",
            changed(
                f"{C3}/cross_entropy",
                "summed_over_the_batch",
                lambda out, i: out * (i["ids"].size // i["ids"].shape[-1]),
            ),
        ),
    ],
    ids=["toy_loss", "cross_entropy"],
)
def test_a_batch_summed_where_it_is_averaged_is_named(exercise_id, fn):
    """Right on one sequence, and on a batch the reference times the number of sequences: a sum
    over the batch where the reference averages, said as such (not "count axes from the end")."""
    message = check_message(exercise_id, fn, {})
    assert "on a batch your output is the reference times" in message, message
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and "on a batch your output is the reference times" in verdict.reason, (
        verdict.reason
    )


@pytest.mark.parametrize("exercise_id", [f"{C6}/kv_cache_bytes", f"{C6}/flops_per_token"])
def test_an_int_argument_one_off_is_named(exercise_id):
    """T + 1 tokens counted: the output, a number, is the reference's for T + 1 on every case it
    gets wrong: an off-by-one in how `T` is used, not "values differ"."""
    fn = student(exercise_id, "one_token_more", lambda ref, inputs: ref(**{**inputs, "T": inputs["T"] + 1}))
    words = "an off-by-one in how your code uses `T`"
    message = check_message(exercise_id, fn, {})
    assert words in message, message
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def _silu(x):
    return x / (1 + np.exp(-x))


@pytest.mark.parametrize(
    "exercise_id, f, name",
    [(f"{C2}/mlp", gelu, "GELU"), (f"{C5}/toy_mlp", gelu, "GELU"), (f"{C2}/swiglu", _silu, "SiLU")],
)
def test_an_activation_applied_to_the_output_too_is_named(exercise_id, f, name):
    fn = changed(exercise_id, f"output_through_{name}", lambda out, inputs: f(out).astype(out.dtype))
    words = f"your output is the reference through a {name}"
    message = check_message(exercise_id, fn, {})
    assert words in message, message
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_a_value_a_hidden_case_does_not_describe_is_never_told():
    """The new rules name an argument's value (`T` = 101, `p` = 1, `n_head` is 2 or 3) only where
    the student may know it: on a visible case, or a hidden one whose description gives it; a
    hidden sampler's seed, which its description leaves out, never."""
    for case in REGISTRY[f"{C4}/sample_next"].cases(1):
        assert core._shown(case, "seed") == (not case.hidden), case.name
    for case in REGISTRY[f"{C6}/kv_cache_bytes"].cases(1):
        assert core._shown(case, "T"), case.name


def _scaled_input(exercise_id, name, factor, moved):
    """The reference with the input ``name`` times ``factor(inputs)`` (``moved``: and the result
    divided by it, the factor applied after a nonlinear step where it belongs before)."""

    def answer(ref, inputs):
        c = factor(inputs)
        out = np.asarray(ref(**{**inputs, name: (inputs[name] * c).astype(inputs[name].dtype)}))
        return (out / c).astype(out.dtype) if moved else out

    return student(exercise_id, f"{name}_scaled{'_moved' if moved else ''}", answer)


@pytest.mark.parametrize(
    "exercise_id, fn, words",
    [
        (
            f"{C2}/attention",
            _scaled_input(f"{C2}/attention", "q", lambda i: math.sqrt(i["q"].shape[-1]), moved=True),
            "then the result divided by that factor",
        ),
        (
            f"{C5}/toy_attention_probs",
            _scaled_input(
                f"{C5}/toy_attention_probs", "q", lambda i: math.sqrt(i["q"].shape[-1]), moved=True
            ),
            "then the result divided by that factor",
        ),
        (
            f"{C3}/softmax",
            _scaled_input(f"{C3}/softmax", "x", lambda i: 1 / math.sqrt(i["x"].shape[-1]), moved=False),
            "your output is what the reference gives with `x` times 1/sqrt(",
        ),
    ],
    ids=["attention", "toy_attention_probs", "softmax"],
)
def test_a_scale_applied_to_the_wrong_thing_is_named(exercise_id, fn, words):
    """attention scaled after the softmax (softmax(q k^T) v / sqrt(d) where the reference scales
    the scores): the reference's with q times sqrt(d) and the result divided by it, said so."""
    message = check_message(exercise_id, fn, {})
    assert words in message, message
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and words in verdict.reason, verdict.reason


# ---- a fourth pass: the feedback sure of what it says, and naming more --------------------------


def test_an_argument_a_wrong_order_of_steps_makes_no_op_is_not_told_it_is_ignored(monkeypatch):
    """top_p, then temperature, then top_k: top_k set back to None changes nothing (top-p, first,
    kept fewer tokens), yet top_k is used (pushed to 1 it moves the output). Not "ignores
    `top_k`", even with no rule that names the order."""
    monkeypatch.setattr(driver, "_steps_reordered", lambda w: None)
    exercise_id = f"{C4}/filtered_probs"
    verdict = explained(exercise_id, filtered_probs_top_p_temperature_top_k)
    assert not verdict.ok and "ignores" not in verdict.reason, verdict.reason


def test_steps_in_another_order_are_named():
    verdict = explained(f"{C4}/filtered_probs", filtered_probs_top_p_temperature_top_k)
    assert not verdict.ok and "in the order top_p, temperature, top_k" in verdict.reason, verdict.reason


def test_a_keep_rule_that_is_not_an_off_by_one_is_not_told_it_is_one():
    """min-p for top-p: one fewer token here, others elsewhere: not "a <= where < belongs"."""
    message = check_message(f"{C4}/top_p_filter", top_p_as_min_p, {})
    assert "not an off-by-one" in message and "<= where <" not in message, message
    verdict = explained(f"{C4}/top_p_filter", top_p_as_min_p)
    assert not verdict.ok and "not an off-by-one" in verdict.reason, verdict.reason


def _gain_first(exercise_id, x, g):
    """The gain multiplied into the input, then the reference with the gain at 1."""
    return student(
        exercise_id,
        "gain_first",
        lambda ref, inputs: ref(**{**inputs, x: inputs[x] * inputs[g], g: np.ones_like(inputs[g])}),
    )


@pytest.mark.parametrize("exercise_id", [f"{C2}/layer_norm", f"{C2}/rms_norm", f"{C5}/toy_layer_norm"])
def test_a_gain_applied_before_the_norm_is_named(exercise_id):
    """The norms declare their steps: the gain first is named as their order."""
    fn = _gain_first(exercise_id, "x", "g")
    words = "what the steps give in the order gain, normalise"
    assert words in check_message(exercise_id, fn, {})
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and words in verdict.reason, verdict.reason


@pytest.mark.parametrize("exercise_id", [f"{C2}/layer_norm", f"{C2}/rms_norm", f"{C5}/toy_layer_norm"])
def test_a_gain_applied_before_the_norm_is_named_without_steps(exercise_id, monkeypatch):
    """An exercise that declares no steps: the gain moved to the input is still named."""
    monkeypatch.setattr(driver, "_steps_reordered", lambda w: None)
    fn = _gain_first(exercise_id, "x", "g")
    words = "you apply `g` to the input `x`, before the other steps"
    assert words in check_message(exercise_id, fn, {})
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def _from_raw(exercise_id):
    """The reference on logits already taken as log-probabilities: the log-softmax left out."""

    def answer(ref, inputs):
        z = inputs["logits"].astype(np.float64)
        picked = np.take_along_axis(z[..., :-1, :], inputs["ids"][..., 1:, None], axis=-1)
        loss = float(-picked.mean())
        return loss if exercise_id.endswith("cross_entropy") else float(np.exp(loss))

    return student(exercise_id, "raw_logits", answer)


@pytest.mark.parametrize("exercise_id", [f"{C3}/cross_entropy", f"{C3}/perplexity"])
def test_a_loss_from_the_raw_logits_is_named(exercise_id):
    fn = _from_raw(exercise_id)
    words = "uses the raw values of `logits`"
    assert words in check_message(exercise_id, fn, {})
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_a_mean_of_another_kind_is_named():
    """Perplexity as 1 / mean(p): the harmonic mean of the positions' perplexities, where the
    reference takes their geometric mean."""
    words = "harmonic mean (1 / the mean of their inverses) of the"
    assert words in check_message(f"{C3}/perplexity", perplexity_inverse_mean_probability, {})
    verdict = explained(f"{C3}/perplexity", perplexity_inverse_mean_probability)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_a_term_with_one_size_where_another_belongs_is_named():
    words = "grows with `T` is the reference's times"
    message = check_message(f"{C6}/flops_per_token", flops_per_token_attention_d_head, {})
    assert words in message and "`config.d_head` where the reference's uses `config.d_model`" in message
    verdict = explained(f"{C6}/flops_per_token", flops_per_token_attention_d_head)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_one_weight_matrix_where_another_belongs_is_named():
    words = "times `params['wpe']` (its first 3 rows), transposed, where the reference's is ln_f times `params['wte']`"
    assert words in check_message(f"{C5}/toy_forward", toy_forward_head_wpe, TOY_HELPERS)
    verdict = explained(f"{C5}/toy_forward", toy_forward_head_wpe, helpers=TOY_HELPERS)
    assert not verdict.ok and words in verdict.reason, verdict.reason


@pytest.mark.parametrize(
    "exercise_id, fn, helpers, words",
    [
        (f"{C2}/multi_head_attention", mha_k_v_swapped, MHA_HELPERS, "feeds it attn.v where it needs attn.k"),
        (f"{C5}/toy_forward", toy_forward_one_head, TOY_HELPERS, "another number of heads"),
    ],
)
def test_what_a_helper_is_fed_is_the_message_itself(exercise_id, fn, helpers, words):
    """Where the output shows nothing more, the first station that differs is the message, not a
    line after "values differ"."""
    message = check_message(exercise_id, fn, helpers)
    assert "values differ" not in message and message.count(words) == 1, message
    verdict = explained(exercise_id, fn, helpers=helpers)
    assert not verdict.ok and "values differ" not in verdict.reason and words in verdict.reason


def _probs_over_length(q, k):
    T = q.shape[-2]
    s = q @ k.swapaxes(-1, -2) / math.sqrt(k.shape[-2])
    s = np.where(np.tri(T, dtype=bool), s, -np.inf)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(q.dtype)


@pytest.mark.parametrize(
    "exercise_id, fn",
    [
        (f"{C4}/attend_with_cache", attend_with_cache_scaled_by_the_length),
        (f"{C5}/toy_attention_probs", _probs_over_length),
    ],
)
def test_a_scale_by_the_wrong_size_is_named(exercise_id, fn):
    words = "where the reference divides by sqrt(a)"
    message = check_message(exercise_id, fn, {})
    assert words in message, message
    verdict = explained(exercise_id, fn)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def _scores_over_length(q, k):
    T = q.shape[-2]
    s = q @ k.swapaxes(-1, -2) / math.sqrt(k.shape[-2])
    return np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)


def test_a_ratio_of_counts_one_apart_by_chance_is_not_told_a_mean_divided_by_the_wrong_count():
    """Scores over sqrt(T): on a case where T = d_head + 1 the output is the reference times
    sqrt(d/(d + 1)), as a root-mean-square over the wrong count is; the other cases say it is not."""
    words = "you divide by sqrt(b) where the reference divides by sqrt(a)"
    message = check_message(f"{C2}/masked_scores", _scores_over_length, {})
    assert "a mean under a square root" not in message and words in message, message
    verdict = explained(f"{C2}/masked_scores", _scores_over_length)
    assert not verdict.ok and "a mean under a square root" not in verdict.reason, verdict.reason
    assert words in verdict.reason, verdict.reason


# ---- a fifth pass: rules for more mistakes nobody listed (session 17) ----------------------------


def _target_log_probs(logp, ids, shifted=True):
    logp, ids = (logp[..., :-1, :], ids[..., 1:]) if shifted else (logp, ids)
    return np.take_along_axis(logp, ids[..., None], axis=-1)[..., 0]


def _loss_of_raw(logits, ids):
    return float(-_target_log_probs(np.asarray(logits, np.float64), ids).mean())


def _perplexity_of_raw(logits, ids):
    return float(np.exp(-_target_log_probs(np.asarray(logits, np.float64), ids).mean()))


def _exp_only(x):
    return np.exp(x)


def _layer_norm_steps(order):
    from grader.exercises.wrong import norms

    def fn(x, g, b, eps=1e-5):
        return norms.layer_norm_steps(order)(x, g, b, eps)

    fn.__name__ = "layer_norm_" + "_".join(order)
    return fn


def _rms_norm_gain_first(x, g, eps=1e-6):
    return lib_rms_norm(x * g, np.ones_like(g), eps)


def lib_rms_norm(x, g, eps):
    z = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
    return (z * g).astype(x.dtype)


def _normalised_per_row(out, inputs):
    centred = out - out.mean(axis=-1, keepdims=True)
    return (centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + 1e-5) * 1.5 + 0.25).astype(
        out.dtype
    )


FIFTH_DIAGNOSES = {
    "your number is the log of the reference's": [
        (eid, changed(eid, "log", lambda out, inputs: np.log(out)), {})
        for eid in (f"{C3}/perplexity", f"{C3}/cross_entropy", f"{C5}/toy_loss")
    ],
    "a softmax is taken once too often": [
        (eid, changed(eid, "softmax_again", lambda out, inputs: softmax(out)), {})
        for eid in (f"{C4}/filtered_probs", f"{C3}/softmax", f"{C5}/toy_attention_probs")
    ],
    "your output is the reference divided by `x`": [
        (
            eid,
            changed(eid, "over_x", lambda out, i: np.where(i["x"] == 0, 0.5, out / i["x"]).astype(out.dtype)),
            {},
        )
        for eid in (f"{C2}/gelu", f"{C2}/layer_norm", f"{C2}/rms_norm")
    ],
    "your output is the reference normalised": [
        (eid, changed(eid, "normalised_again", _normalised_per_row), {})
        for eid in (f"{C2}/block", f"{C2}/mlp", f"{C2}/multi_head_attention")
    ],
    "is `x` counted twice": [
        (eid, student(eid, "x_twice", lambda ref, inputs: ref(**{**inputs, "x": inputs["x"] * 2})), {})
        for eid in (f"{C2}/gelu", f"{C2}/mlp", f"{C2}/swiglu")
    ],
    "times ln 2": [
        (
            eid,
            student(
                eid,
                "base_2",
                lambda ref, inputs, n=n: ref(
                    **{**inputs, n: (inputs[n] * math.log(2)).astype(inputs[n].dtype)}
                ),
            ),
            {},
        )
        for eid, n in ((f"{C3}/softmax", "x"), (f"{C3}/log_softmax", "x"), (f"{C5}/toy_attention_probs", "q"))
    ],
    "when it is given the log-softmax of each row": [
        (f"{C3}/cross_entropy", _loss_of_raw, {}),
        (f"{C3}/perplexity", _perplexity_of_raw, {}),
        (f"{C3}/softmax", _exp_only, {}),
    ],
    "what the steps give in the order": [
        (f"{C2}/layer_norm", _layer_norm_steps(("normalise", "bias", "gain")), {}),
        (f"{C5}/toy_layer_norm", _layer_norm_steps(("gain", "normalise", "bias")), {}),
        (f"{C2}/rms_norm", _rms_norm_gain_first, {}),
        (f"{C4}/filtered_probs", filtered_probs_top_p_temperature_top_k, {}),
    ],
}
FIFTH_CASES = [
    (fragment, eid, fn, helpers)
    for fragment, entries in FIFTH_DIAGNOSES.items()
    for eid, fn, helpers in entries
]


def test_each_new_diagnosis_is_tested_in_three_exercises():
    for fragment, entries in FIFTH_DIAGNOSES.items():
        assert len({eid for eid, _, _ in entries}) >= 3, fragment


@pytest.mark.parametrize(
    "fragment, exercise_id, fn, helpers",
    FIFTH_CASES,
    ids=[f"{f.strip('` ')}-{e}-{fn.__name__}" for f, e, fn, _ in FIFTH_CASES],
)
def test_the_new_diagnoses_name_the_mistake_in_the_check_and_in_grading(fragment, exercise_id, fn, helpers):
    names_it(fragment, exercise_id, fn, helpers)


def test_a_listed_mistake_that_agrees_on_the_case_by_chance_is_not_named_in_the_check():
    """top_p, temperature, top_k agrees with the listed "temperature last" on every visible case;
    a variant with top_p raised towards 1 tells them apart, so the check names the order."""
    message = check_message(f"{C4}/filtered_probs", filtered_probs_top_p_temperature_top_k, {})
    assert "in the order top_p, temperature, top_k" in message, message
    assert "temperature comes FIRST" not in message, message


def test_a_part_of_a_count_off_by_a_named_factor_is_named():
    def flops_one_per_weight(config, T):
        full = REGISTRY[f"{C6}/flops_per_token"].reference(config, T)
        attention = 2 * config.n_layer * T * config.d_model
        return (full - attention) // 2 + attention

    words = "the rest is the reference's times 0.5 (= 1/2)"
    assert words in check_message(f"{C6}/flops_per_token", flops_one_per_weight, {})
    verdict = explained(f"{C6}/flops_per_token", flops_one_per_weight)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_vectors_split_into_another_number_of_heads_are_named_as_such():
    message = check_message(f"{C5}/toy_forward", toy_forward_one_head, TOY_HELPERS)
    assert "split into 1 head where the reference splits them into 2" in message, message


def test_text_with_its_ends_stripped_is_named():
    def decode_stripped(ids, itos):
        return "".join(itos[int(i)] for i in ids).strip()

    verdict = explained(f"{C1}/decode", decode_stripped)
    assert not verdict.ok and "(a .strip()?)" in verdict.reason, verdict.reason
