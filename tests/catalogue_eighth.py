"""Right answers written in unusual ways (a review of unlisted answers, eighth round): each must
keep the check's ✔ and every point, with no message. Their helpers are right implementations of
chapters 3 and 4, found through this module's globals as a student's notebook finds them."""

import math

import numpy as np
from catalogue import (
    C1,
    C2,
    C3,
    C4,
    C5,
    C6,
    MHA_HELPERS,
    _entry,
    attention,
    merge_heads,
    softmax,
    split_heads,
)  # noqa: F401

# ---- right helpers of chapters 3 and 4 ----------------------------------------------------------


def log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return (x - m) - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def cross_entropy(logits, ids):
    logp = log_softmax(logits[..., :-1, :])
    return float(-np.take_along_axis(logp, ids[..., 1:, None], axis=-1).mean())


def apply_temperature(logits, temperature):
    if temperature == 0:
        out = np.full_like(logits, -np.inf)
        i = np.argmax(logits, axis=-1)[..., None]
        np.put_along_axis(out, i, np.take_along_axis(logits, i, -1), -1)
        return out
    return logits / temperature


def top_k_filter(logits, k):
    if k is None or k >= logits.shape[-1]:
        return logits.copy()
    out = logits.copy()
    np.put_along_axis(out, np.argsort(-logits, axis=-1, kind="stable")[..., k:], -np.inf, axis=-1)
    return out


def top_p_filter(logits, p):
    if p is None or p >= 1:
        return logits.copy()
    order = np.argsort(-logits, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(softmax(logits), order, axis=-1)
    keep = np.zeros(logits.shape, dtype=bool)
    np.put_along_axis(keep, order, np.cumsum(sorted_p, axis=-1) - sorted_p < p, axis=-1)
    return np.where(keep, logits, -np.inf).astype(logits.dtype)


def filtered_probs(logits, temperature=1.0, top_k=None, top_p=None):
    return softmax(top_p_filter(top_k_filter(apply_temperature(logits, temperature), top_k), top_p))


def sample_next(logits, rng, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0 or top_k == 1:
        return int(np.argmax(logits))
    cdf = np.cumsum(filtered_probs(logits, temperature, top_k, top_p).astype(np.float64))
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))


# ---- the right answers --------------------------------------------------------------------


def encode_vectorized_lookup(text, stoi):
    return np.vectorize(stoi.__getitem__, otypes=[np.int64])(np.array(list(text)))


def decode_without_int_cast(ids, itos):
    return "".join(itos[i] for i in ids)


def embed_fancy_index_then_iadd(ids, wte, wpe):
    x = wte[ids]  # fancy indexing copies: adding in place is safe
    x += wpe[: ids.shape[-1]]
    return x


def sinusoidal_j_over_half_d(n_tokens, d, base=10000.0):
    j = np.arange(d // 2)
    angles = np.arange(n_tokens)[:, None] / base ** (j / (d / 2))
    return np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(n_tokens, d)


def sinusoidal_cos_as_shifted_sin(n_tokens, d, base=10000.0):
    angles = np.outer(np.arange(n_tokens), base ** (-np.arange(0, d, 2) / d))
    P = np.zeros((n_tokens, d))
    P[:, ::2] = np.sin(angles)
    P[:, 1::2] = np.sin(angles + np.pi / 2)
    return P


def layer_norm_centring_matrix(x, g, b, eps=1e-5):
    d = x.shape[-1]
    C = (np.eye(d) - 1.0 / d).astype(x.dtype)
    c = x @ C
    return (c / np.sqrt(np.mean(c * c, axis=-1, keepdims=True) + eps) * g + b).astype(x.dtype)


def masked_scores_tril_of_floats(q, k):
    T = q.shape[-2]
    s = np.einsum("...td,...sd->...ts", q, k) / math.sqrt(q.shape[-1])
    return np.where(np.tril(np.ones((T, T))), s, -np.inf)


def mha_split_into_three_n_head_heads(x, params, n_head):
    qkv = x @ params["c_attn"]["w"] + params["c_attn"]["b"]
    q, k, v = np.split(split_heads(qkv, 3 * n_head), 3, axis=-3)
    return merge_heads(attention(q, k, v)) @ params["c_proj"]["w"] + params["c_proj"]["b"]


def rms_norm_through_linalg_norm(x, g, eps=1e-6):
    d = x.shape[-1]
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.sqrt(n * n / d + eps) * g).astype(x.dtype)


def rope_as_complex_numbers(x, positions, theta=10000.0):
    h = x.shape[-1] // 2
    z = x[..., :h] + 1j * x[..., h:]
    angles = np.asarray(positions)[:, None] * theta ** (-np.arange(h) * 2 / x.shape[-1])
    r = z * np.exp(1j * angles)
    return np.concatenate([r.real, r.imag], axis=-1).astype(x.dtype)


def swiglu_silu_through_logaddexp(x, params):
    gate = x @ params["gate_proj"]["w"]
    silu = gate * np.exp(-np.logaddexp(0, -gate)).astype(gate.dtype)
    return (silu * (x @ params["up_proj"]["w"])) @ params["down_proj"]["w"]


def cross_entropy_one_hot_product(logits, ids):
    logp = log_softmax(logits[..., :-1, :])
    onehot = np.eye(logits.shape[-1], dtype=logp.dtype)[ids[..., 1:]]
    return float(-(onehot * logp).sum(axis=-1).mean())


def temperature_zero_by_row_indexing(logits, temperature):
    if temperature != 0:
        return logits / temperature
    flat = logits.reshape(-1, logits.shape[-1])
    out = np.full_like(flat, -np.inf)
    rows = np.arange(flat.shape[0])
    best = flat.argmax(axis=-1)
    out[rows, best] = flat[rows, best]
    return out.reshape(logits.shape)


def top_p_row_by_row_loop(logits, p):
    if p is None or p >= 1:
        return logits.copy()
    rows = logits.reshape(-1, logits.shape[-1])
    out = np.full_like(rows, -np.inf)
    for r in range(rows.shape[0]):
        probs = softmax(rows[r])
        mass = 0.0
        for i in sorted(range(rows.shape[1]), key=lambda i: (-rows[r, i], i)):
            if mass < p:
                out[r, i] = rows[r, i]
            mass += probs[i]
    return out.reshape(logits.shape)


def filtered_probs_top_k_first(logits, temperature=1.0, top_k=None, top_p=None):
    # dividing by a positive temperature keeps the order, so top-k commutes with it
    return softmax(top_p_filter(apply_temperature(top_k_filter(logits, top_k), temperature), top_p))


def filtered_probs_mask_then_renormalise(logits, temperature=1.0, top_k=None, top_p=None):
    z = apply_temperature(logits, temperature)
    keep = np.isfinite(top_p_filter(top_k_filter(z, top_k), top_p))
    p = softmax(z) * keep
    return p / p.sum(axis=-1, keepdims=True)


def sample_next_random_of_size_one(logits, rng, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0 or top_k == 1:
        return int(np.argmax(logits))
    cdf = np.cumsum(filtered_probs(logits, temperature, top_k, top_p).astype(np.float64))
    u = rng.random(1)[0]
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), len(cdf) - 1))


def sample_next_searchsorted_left(logits, rng, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0 or top_k == 1:
        return int(np.argmax(logits))
    cdf = np.cumsum(filtered_probs(logits, temperature, top_k, top_p).astype(np.float64))
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="left"), len(cdf) - 1))


def generate_default_rng_of_rng(
    next_logits, ids, max_new_tokens, rng, temperature=1.0, top_k=None, top_p=None, stop_token=None
):
    rng = np.random.default_rng(rng)  # a Generator passes through unchanged
    out = np.asarray(ids, dtype=np.int64)
    for _ in range(max_new_tokens):
        token = sample_next(next_logits(out), rng, temperature=temperature, top_k=top_k, top_p=top_p)
        out = np.concatenate([out, [token]]).astype(np.int64)
        if stop_token is not None and token == stop_token:
            break
    return out


def attend_with_cache_mask_by_blocks(q_new, k_new, v_new, cache_k, cache_v):
    k, v = np.concatenate([cache_k, k_new], axis=-2), np.concatenate([cache_v, v_new], axis=-2)
    T, S = q_new.shape[-2], cache_k.shape[-2]
    allowed = np.concatenate([np.ones((T, S), bool), np.tril(np.ones((T, T), bool))], axis=1)
    s = q_new @ k.swapaxes(-1, -2) / math.sqrt(q_new.shape[-1])
    return softmax(np.where(allowed, s, -np.inf)) @ v, k, v


def toy_attention_output_concatenate_heads_array(probs, v, w, b):
    heads = probs @ v
    return np.concatenate(heads, axis=-1) @ w + b


def toy_layer_norm_two_pass_float64(x, g, b, eps):
    x64 = x.astype(np.float64)
    c = x64 - x64.sum(axis=-1, keepdims=True) / x.shape[-1]
    out = c / np.sqrt((c**2).sum(axis=-1, keepdims=True) / x.shape[-1] + eps) * g + b
    return out.astype(x.dtype)


def count_params_tensor_by_tensor(config):
    c = config
    d, V, L = c.d_model, c.vocab_size, c.n_layer
    bias = bool(c.bias)
    norm = [(d,)] + ([(d,)] if (c.norm == "layernorm" and c.bias) else [])
    qkv = (c.n_head + 2 * c.n_kv_head) * c.d_head
    block = norm * 2 + [(d, qkv), (d, d)] + ([(qkv,), (d,)] if bias else [])
    if c.mlp == "swiglu":
        block += [(d, c.d_ff)] * 2 + [(c.d_ff, d)] + ([(c.d_ff,), (c.d_ff,), (d,)] if bias else [])
    else:
        block += [(d, c.d_ff), (c.d_ff, d)] + ([(c.d_ff,), (d,)] if bias else [])
    tensors = [(V, d)] + block * L + norm
    tensors += [(c.n_ctx, d)] if c.positions == "learned" else []
    tensors += [] if c.tie_embeddings else [(d, V)]
    return sum(math.prod(s) for s in tensors)


def kv_cache_bytes_empty_itemsize(config, T, dtype):
    return int(2 * config.n_layer * config.n_kv_head * config.d_head * T * np.empty(0, dtype=dtype).itemsize)


H_CE = {"log_softmax": log_softmax}
H_FILT = {"apply_temperature": apply_temperature, "top_k_filter": top_k_filter, "top_p_filter": top_p_filter}
H_SAMPLE = {"filtered_probs": filtered_probs}
H_GEN = {"sample_next": sample_next}

EIGHTH_RIGHT = [
    _entry(f"{C1}/encode", encode_vectorized_lookup),
    _entry(f"{C1}/decode", decode_without_int_cast),
    _entry(f"{C1}/embed", embed_fancy_index_then_iadd),
    _entry(f"{C1}/sinusoidal_positions", sinusoidal_j_over_half_d),
    _entry(f"{C1}/sinusoidal_positions", sinusoidal_cos_as_shifted_sin),
    _entry(f"{C2}/layer_norm", layer_norm_centring_matrix),
    _entry(f"{C2}/masked_scores", masked_scores_tril_of_floats),
    _entry(f"{C2}/multi_head_attention", mha_split_into_three_n_head_heads, helpers=MHA_HELPERS),
    _entry(f"{C2}/rms_norm", rms_norm_through_linalg_norm),
    _entry(f"{C2}/apply_rope", rope_as_complex_numbers),
    _entry(f"{C2}/swiglu", swiglu_silu_through_logaddexp),
    _entry(f"{C3}/cross_entropy", cross_entropy_one_hot_product, helpers=H_CE),
    _entry(f"{C4}/apply_temperature", temperature_zero_by_row_indexing),
    _entry(f"{C4}/top_p_filter", top_p_row_by_row_loop),
    _entry(f"{C4}/filtered_probs", filtered_probs_top_k_first, helpers=H_FILT),
    _entry(f"{C4}/filtered_probs", filtered_probs_mask_then_renormalise, helpers=H_FILT),
    _entry(f"{C4}/sample_next", sample_next_random_of_size_one, helpers=H_SAMPLE),
    _entry(f"{C4}/sample_next", sample_next_searchsorted_left, helpers=H_SAMPLE),
    _entry(f"{C4}/generate", generate_default_rng_of_rng, helpers=H_GEN),
    _entry(f"{C4}/attend_with_cache", attend_with_cache_mask_by_blocks),
    _entry(f"{C5}/toy_attention_output", toy_attention_output_concatenate_heads_array),
    _entry(f"{C5}/toy_layer_norm", toy_layer_norm_two_pass_float64),
    _entry(f"{C6}/count_params", count_params_tensor_by_tensor),
    _entry(f"{C6}/kv_cache_bytes", kv_cache_bytes_empty_itemsize),
]
