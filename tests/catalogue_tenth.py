"""A tenth catalogue of answers nobody listed (helper mistakes-9): wrong implementations written
from the exercises' docstrings, as a student might, before any message was seen, and right ones
written in unusual ways. Each is new to ``catalogue``, ``catalogue_eighth`` and ``catalogue_ninth``:
several work only for the visible case's shape (a 2-D ``.T``, a threshold over the whole array, a
sum without ``keepdims``). ``TENTH_FIXED`` got only "values differ" until the diagnosis looked
for the reference's values in another order within the exercise's own tolerance, where that is
looser than its own (a sampler's frequencies).
"""

import math

import numpy as np
from catalogue import C1, C2, C3, C4, C5, C6, _count, _embeddings, _entry, softmax

# ---- wrong ---------------------------------------------------------------------------------------
# sample_next_index_in_sorted_order is TENTH_FIXED; the rest were named or listed already.


def token_embedding_columns_transposed(ids, wte):
    return wte.T[:, ids].T


def layer_norm_divided_by_the_variance(x, g, b, eps=1e-5):
    c = x - x.mean(axis=-1, keepdims=True)
    return c / (x.var(axis=-1, keepdims=True) + eps) * g + b


def layer_norm_whole_array_statistics(x, g, b, eps=1e-5):
    return (x - x.mean()) / np.sqrt(x.var() + eps) * g + b


def attention_keys_transposed_with_T(q, k, v):
    s = q @ k.T / math.sqrt(q.shape[-1])
    s = np.where(np.tri(s.shape[-1], dtype=bool), s, -np.inf)
    return softmax(s) @ v


def split_heads_reshaped_heads_first(x, n_head):
    *lead, T, d = x.shape
    return x.reshape(*lead, n_head, T, d // n_head)


def gelu_root_of_pi_over_two(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(math.pi / 2) * (x + 0.044715 * x**3)))


def rms_norm_without_the_root(x, g, eps=1e-6):
    return x / ((x * x).mean(axis=-1, keepdims=True) + eps) * g


def swiglu_gelu_gate(x, params):
    gate = x @ params["gate_proj"]["w"]
    gelu = 0.5 * gate * (1 + np.tanh(math.sqrt(2 / math.pi) * (gate + 0.044715 * gate**3)))
    return (gelu * (x @ params["up_proj"]["w"])) @ params["down_proj"]["w"]


def softmax_sum_without_keepdims(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1)


def cross_entropy_predicting_the_previous_token(logits, ids):
    z = logits[..., 1:, :]
    logp = z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) - z.max(-1, keepdims=True)
    return float(-np.take_along_axis(logp, ids[..., :-1, None], axis=-1).mean())


def top_k_threshold_over_the_whole_array(logits, k):
    if k is None or k >= logits.shape[-1]:
        return logits.copy()
    kth = np.sort(logits, axis=None)[-k]
    return np.where(logits >= kth, logits, -np.inf)


def sample_next_index_in_sorted_order(logits, rng, temperature=1.0, top_k=None, top_p=None):
    import lib

    if temperature == 0 or top_k == 1:
        return int(np.argmax(logits))
    probs = lib.filtered_probs(logits, temperature, top_k, top_p).astype(np.float64)
    ranked = np.sort(probs)[::-1]
    return int(rng.choice(len(ranked), p=ranked / ranked.sum()))


def attend_with_cache_cached_on_the_feature_axis(q_new, k_new, v_new, cache_k, cache_v):
    k, v = np.concatenate([cache_k, k_new], axis=-1), np.concatenate([cache_v, v_new], axis=-1)
    s = q_new @ k[..., : q_new.shape[-1]].swapaxes(-1, -2) / math.sqrt(q_new.shape[-1])
    return softmax(s) @ v[..., : q_new.shape[-1]], k, v


def toy_layer_norm_eps_outside_the_root(x, g, b, eps):
    c = x - x.mean(axis=-1, keepdims=True)
    return c / (np.sqrt(x.var(axis=-1, keepdims=True)) + eps) * g + b


def toy_mlp_exact_erf(x, w_fc, b_fc, w_proj, b_proj):
    h = x @ w_fc + b_fc
    erf = np.vectorize(math.erf)
    return (0.5 * h * (1 + erf(h / math.sqrt(2)))) @ w_proj + b_proj


def flops_per_token_training_six_n(config, T):
    forward = 2 * (_count(config) - _embeddings(config)) + 2 * config.n_layer * T * config.d_model
    return 3 * forward


TENTH_FIXED = [
    _entry(f"{C4}/sample_next", sample_next_index_in_sorted_order, r"sorted in descending order.*rank"),
]

TENTH_WRONG = [
    _entry(f"{C1}/token_embedding", token_embedding_columns_transposed, r"batch"),
    _entry(f"{C2}/layer_norm", layer_norm_divided_by_the_variance, r"sqrt|root|variance"),
    _entry(f"{C2}/layer_norm", layer_norm_whole_array_statistics, r"whole|all axes|last axis|row"),
    _entry(f"{C2}/attention", attention_keys_transposed_with_T, r"\.T|swapaxes|batch|shape"),
    _entry(f"{C2}/split_heads", split_heads_reshaped_heads_first, r"reshape|transpose|order"),
    _entry(f"{C2}/gelu", gelu_root_of_pi_over_two, r"sqrt\(2 */ *pi\)|2/pi|constant"),
    _entry(f"{C2}/rms_norm", rms_norm_without_the_root, r"sqrt|root"),
    _entry(f"{C2}/swiglu", swiglu_gelu_gate, r"silu|SiLU|gelu|GELU"),
    _entry(f"{C3}/softmax", softmax_sum_without_keepdims, r"keepdims|broadcast|shape"),
    _entry(f"{C3}/cross_entropy", cross_entropy_predicting_the_previous_token, r"shift|previous|next"),
    _entry(f"{C4}/top_k_filter", top_k_threshold_over_the_whole_array, r"row|whole|axis"),
    _entry(f"{C4}/attend_with_cache", attend_with_cache_cached_on_the_feature_axis, r"axis|shape|cache"),
    _entry(f"{C6}/flops_per_token", flops_per_token_training_six_n, r"6|six|training|3 times|backward"),
    _entry(f"{C5}/toy_layer_norm", toy_layer_norm_eps_outside_the_root, r"eps"),
    _entry(f"{C5}/toy_mlp", toy_mlp_exact_erf, r"erf|tanh|approximation"),
]


# ---- right answers written another way -----------------------------------------------------------


def layer_norm_along_rows(x, g, b, eps=1e-5):
    def row(r):
        c = r - r.mean()
        return c / np.sqrt((c * c).mean() + eps)

    return np.apply_along_axis(row, -1, x) * g + b


def split_heads_by_np_split(x, n_head):
    return np.stack(np.split(x, n_head, axis=-1), axis=-3)


def merge_heads_by_moveaxis(x):
    *lead, H, T, dh = x.shape
    return np.moveaxis(x, -3, -2).reshape(*lead, T, H * dh)


def rms_norm_through_the_vector_norm(x, g, eps=1e-6):
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.sqrt(n * n / x.shape[-1] + eps) * g


def gelu_cube_as_product(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))


def perplexity_in_bits(logits, ids):
    z = logits[..., :-1, :]
    logp = z - np.logaddexp.reduce(z, axis=-1, keepdims=True)
    bits = -np.take_along_axis(logp, ids[..., 1:, None], axis=-1).mean() / math.log(2)
    return float(2.0**bits)


TENTH_RIGHT = [
    _entry(f"{C3}/perplexity", perplexity_in_bits),
    _entry(f"{C2}/layer_norm", layer_norm_along_rows),
    _entry(f"{C2}/split_heads", split_heads_by_np_split),
    _entry(f"{C2}/merge_heads", merge_heads_by_moveaxis),
    _entry(f"{C2}/rms_norm", rms_norm_through_the_vector_norm),
    _entry(f"{C2}/gelu", gelu_cube_as_product),
]
