"""A ninth catalogue of answers nobody listed (session 35): wrong implementations written from the
exercises' docstrings, as a student might, before any message was seen, and right ones written in
unusual ways. ``NINTH_FIXED`` got only "values differ" (or a message that pointed elsewhere) until
the diagnosis learnt the relation each one shows; the rest were named, or listed, already.
"""

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
)
from catalogue_eighth import apply_temperature, log_softmax, top_k_filter, top_p_filter


def _rope(x, angles):
    half = x.shape[-1] // 2
    cos, sin, x1, x2 = np.cos(angles), np.sin(angles), x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


# ---- wrong: named only since this round -----------------------------------------------------------


def decode_joined_with_newlines(ids, itos):
    return "\n".join(itos[int(i)] for i in ids)


def decode_as_printed_list(ids, itos):
    return str([itos[int(i)] for i in ids])


def position_embedding_running_total(n_tokens, wpe):
    return np.cumsum(wpe[:n_tokens], axis=0)


def embed_tokens_times_positions(ids, wte, wpe):
    return wte[ids] * wpe[: ids.shape[-1]]


def embed_into_an_int_buffer(ids, wte, wpe):
    out = np.zeros((*ids.shape, wte.shape[1]), dtype=ids.dtype)
    out[...] = wte[ids] + wpe[: ids.shape[-1]]
    return out


def sinusoidal_into_an_int_table(n_tokens, d, base=10000.0):
    table = np.zeros((n_tokens, d), dtype=int)
    angles = np.arange(n_tokens)[:, None] / base ** (np.arange(0, d, 2) / d)
    table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
    return table


def merge_heads_averaged(x):
    return np.concatenate([x.mean(axis=-3)] * x.shape[-3], axis=-1)


def merge_heads_first_head_repeated(x):
    return np.concatenate([x[..., 0, :, :]] * x.shape[-3], axis=-1)


def log_softmax_log_of_probabilities_plus_eps(x):
    return np.log(softmax(x) + 1e-9)


def log_softmax_clipped(x):
    return np.maximum(log_softmax(x), -30.0).astype(x.dtype)


NINTH_FIXED = [
    _entry(f"{C1}/decode", decode_joined_with_newlines, r"between every two characters"),
    _entry(f"{C1}/decode", decode_as_printed_list, r"printed form of a list"),
    _entry(f"{C1}/position_embedding", position_embedding_running_total, r"running total"),
    _entry(f"{C1}/embed", embed_tokens_times_positions, r"times embed\.\w+, where the reference adds them"),
    _entry(f"{C1}/embed", embed_into_an_int_buffer, r"integers .* rounded toward zero"),
    _entry(f"{C1}/sinusoidal_positions", sinusoidal_into_an_int_table, r"integers .* rounded toward zero"),
    _entry(f"{C2}/merge_heads", merge_heads_averaged, r"copies of the same block .*mean"),
    _entry(f"{C2}/merge_heads", merge_heads_first_head_repeated, r"copies of the same block .*block 0"),
    _entry(f"{C3}/log_softmax", log_softmax_log_of_probabilities_plus_eps, r"log\(p \+ 1e-09\)"),
    _entry(f"{C3}/log_softmax", log_softmax_clipped, r"floor at -30"),
]


# ---- wrong: named or listed already, or honest "values differ" -----------------------------------


def decode_each_id_plus_one(ids, itos):
    return "".join(itos.get(int(i) + 1, itos[int(i)]) for i in ids)


def decode_first_character_dropped(ids, itos):
    return "".join(itos[int(i)] for i in ids[1:])


def token_embedding_centred(ids, wte):
    return wte[ids] - wte.mean(axis=0)


def token_embedding_unit_rows(ids, wte):
    rows = wte[ids]
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def embed_positions_by_batch_size(ids, wte, wpe):
    return wte[ids] + wpe[: len(ids)]


def sinusoidal_from_position_one(n_tokens, d, base=10000.0):
    angles = np.arange(1, n_tokens + 1)[:, None] / base ** (np.arange(0, d, 2) / d)
    table = np.empty((n_tokens, d))
    table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
    return table


def layer_norm_gain_and_bias_swapped(x, g, b, eps=1e-5):
    m = x.mean(axis=-1, keepdims=True)
    return (x - m) / np.sqrt(x.var(axis=-1, keepdims=True) + eps) * b + g


def masked_scores_scaled_by_the_length(q, k):
    s = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-2])
    return np.where(np.tri(s.shape[-1], dtype=bool), s, -np.inf)


def attention_softmax_over_the_whole_matrix(q, k, v):
    s = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])
    s = np.where(np.tri(s.shape[-1], dtype=bool), s, -np.inf)
    e = np.exp(s - s.max(axis=(-2, -1), keepdims=True))
    return e / e.sum(axis=(-2, -1), keepdims=True) @ v


def split_heads_last_head_first(x, n_head):
    *lead, T, d = x.shape
    return x.reshape(*lead, T, n_head, d // n_head).swapaxes(-2, -3)[..., ::-1, :, :]


def mha_qkv_columns_interleaved(x, params, n_head):
    qkv = x @ params["c_attn"]["w"] + params["c_attn"]["b"]
    r = qkv.reshape(*qkv.shape[:-1], qkv.shape[-1] // 3, 3)
    q, k, v = r[..., 0], r[..., 1], r[..., 2]
    heads = attention(split_heads(q, n_head), split_heads(k, n_head), split_heads(v, n_head))
    return merge_heads(heads) @ params["c_proj"]["w"] + params["c_proj"]["b"]


def gelu_cubic_coefficient_ten_times(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.44715 * x**3)))


def gelu_as_x_sigmoid(x):
    return x / (1 + np.exp(-1.702 * x))


def rms_norm_root_of_the_sum(x, g, eps=1e-6):
    return x / np.sqrt((x * x).sum(axis=-1, keepdims=True) + eps) * g


def rope_frequencies_growing(x, positions, theta=10000.0):
    d = x.shape[-1]
    return _rope(x, np.asarray(positions)[:, None] * theta ** (np.arange(0, d, 2) / d))


def rope_angles_in_degrees(x, positions, theta=10000.0):
    d = x.shape[-1]
    return _rope(x, np.deg2rad(np.asarray(positions)[:, None] * theta ** (-np.arange(0, d, 2) / d)))


def softmax_divided_by_the_largest(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.max(axis=-1, keepdims=True)


def softmax_shifted_by_the_min(x):
    e = np.exp(x - x.min(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy_over_the_whole_vocabulary(logits, ids):
    return float(-log_softmax(logits[..., :-1, :]).mean())


def perplexity_mean_of_inverse_probabilities(logits, ids):
    logp = np.take_along_axis(log_softmax(logits[..., :-1, :]), ids[..., 1:, None], axis=-1)
    return float((1 / np.exp(logp)).mean())


def apply_temperature_greedy_keeps_the_last_maximum(logits, temperature):
    if temperature != 0:
        return logits / temperature
    out = np.full_like(logits, -np.inf)
    best = (logits.shape[-1] - 1 - np.argmax(logits[..., ::-1], axis=-1))[..., None]
    np.put_along_axis(out, best, np.take_along_axis(logits, best, axis=-1), axis=-1)
    return out


def top_k_threshold_from_partition(logits, k):
    if k is None or k >= logits.shape[-1]:
        return logits.copy()
    kth = -np.partition(-logits, k, axis=-1)[..., k : k + 1]
    return np.where(logits >= kth, logits, -np.inf)


def top_p_on_logits_not_probabilities(logits, p):
    if p is None or p >= 1:
        return logits.copy()
    order = np.argsort(-logits, axis=-1, kind="stable")
    ranked = np.take_along_axis(logits, order, axis=-1)
    keep = np.zeros(logits.shape, dtype=bool)
    np.put_along_axis(keep, order, np.cumsum(ranked, axis=-1) - ranked < p, axis=-1)
    return np.where(keep, logits, -np.inf).astype(logits.dtype)


def filtered_probs_softmax_twice(logits, temperature=1.0, top_k=None, top_p=None):
    z = top_p_filter(top_k_filter(apply_temperature(logits, temperature), top_k), top_p)
    return softmax(softmax(z))


def toy_embed_positions_reversed(ids, wte, wpe):
    return wte[ids] + wpe[: len(ids)][::-1]


def toy_qkv_bias_of_q_on_all_three(x, w, b, n_head):
    T, d = x.shape
    return np.stack(
        [(t + b[:d]).reshape(T, n_head, d // n_head).transpose(1, 0, 2) for t in np.split(x @ w, 3, axis=-1)]
    )


def toy_attention_output_heads_averaged(probs, v, w, b):
    heads = probs @ v
    return np.concatenate([heads.mean(axis=0)] * heads.shape[0], axis=-1) @ w + b


def toy_loss_last_position_left_out(logits, targets):
    logp = log_softmax(logits)[..., :-1, :]
    return float(-np.take_along_axis(logp, targets[..., :-1, None], axis=-1).mean())


def toy_loss_targets_shifted_again(logits, targets):
    logp = log_softmax(logits)[..., :-1, :]
    return float(-np.take_along_axis(logp, targets[..., 1:, None], axis=-1).mean())


def kv_cache_bytes_one_layer(config, T, dtype):
    return 2 * config.n_kv_head * config.d_head * T * np.dtype(dtype).itemsize


NINTH_WRONG = [
    _entry(f"{C1}/decode", decode_each_id_plus_one, r"off-by-one|id \+ 1|next id"),
    _entry(f"{C1}/decode", decode_first_character_dropped, r"first character"),
    _entry(f"{C1}/token_embedding", token_embedding_centred, r"same vector|mean"),
    _entry(f"{C1}/token_embedding", token_embedding_unit_rows, r"factor of its own|normalisation"),
    _entry(f"{C1}/embed", embed_positions_by_batch_size, r"ids\.shape\[-1\]|len\(ids\)"),
    _entry(f"{C1}/sinusoidal_positions", sinusoidal_from_position_one, r"shifted by one"),
    _entry(f"{C2}/layer_norm", layer_norm_gain_and_bias_swapped, r"swapped"),
    _entry(f"{C2}/masked_scores", masked_scores_scaled_by_the_length, r"sqrt"),
    _entry(f"{C2}/attention", attention_softmax_over_the_whole_matrix, r"factor of its own|row"),
    _entry(f"{C2}/split_heads", split_heads_last_head_first, r"reversed"),
    _entry(f"{C2}/multi_head_attention", mha_qkv_columns_interleaved, r"feeds it another", MHA_HELPERS),
    _entry(f"{C2}/gelu", gelu_cubic_coefficient_ten_times, r"0\.044715|coefficient"),
    _entry(f"{C2}/gelu", gelu_as_x_sigmoid, r"sigmoid|1\.702|approximation"),
    _entry(f"{C2}/rms_norm", rms_norm_root_of_the_sum, r"sum|mean"),
    _entry(f"{C2}/apply_rope", rope_frequencies_growing, r"frequency|exponent"),
    _entry(f"{C2}/apply_rope", rope_angles_in_degrees, r"frequency|scale|degree"),
    _entry(f"{C3}/softmax", softmax_divided_by_the_largest, r"factor of its own|normalisation"),
    _entry(f"{C3}/softmax", softmax_shifted_by_the_min, r"NaN|overflow|max"),
    _entry(f"{C3}/cross_entropy", cross_entropy_over_the_whole_vocabulary, r"ignores `ids`"),
    _entry(f"{C3}/perplexity", perplexity_mean_of_inverse_probabilities, r"arithmetic mean|geometric"),
    _entry(f"{C4}/apply_temperature", apply_temperature_greedy_keeps_the_last_maximum, r"lower index"),
    _entry(f"{C4}/top_k_filter", top_k_threshold_from_partition, r"1 more entry"),
    _entry(f"{C4}/top_p_filter", top_p_on_logits_not_probabilities, r"probabilities"),
    _entry(f"{C4}/filtered_probs", filtered_probs_softmax_twice, r"softmax is taken once too often"),
    _entry(f"{C5}/toy_embed", toy_embed_positions_reversed, r"revers|order"),
    _entry(f"{C5}/toy_qkv", toy_qkv_bias_of_q_on_all_three, r"columns of w or b"),
    _entry(f"{C5}/toy_attention_output", toy_attention_output_heads_averaged, r"head|average|mean"),
    _entry(f"{C5}/toy_loss", toy_loss_last_position_left_out, r"last|too few"),
    _entry(f"{C5}/toy_loss", toy_loss_targets_shifted_again, r"already the next tokens"),
    _entry(f"{C6}/kv_cache_bytes", kv_cache_bytes_one_layer, r"n_layer|layer"),
]


# ---- right answers written another way -----------------------------------------------------------


def decode_by_accumulating(ids, itos):
    text = ""
    for i in ids:
        text += itos[int(i)]
    return text


def position_embedding_np_take(n_tokens, wpe):
    return np.take(wpe, np.arange(n_tokens), axis=0)


def sinusoidal_through_complex_exponentials(n_tokens, d, base=10000.0):
    z = np.exp(1j * np.arange(n_tokens)[:, None] / base ** (np.arange(0, d, 2) / d))
    return np.stack([z.imag, z.real], axis=-1).reshape(n_tokens, d)


def layer_norm_std_squared(x, g, b, eps=1e-5):
    c = x - x.mean(axis=-1, keepdims=True)
    return c / np.sqrt(x.std(axis=-1, keepdims=True) ** 2 + eps) * g + b


def merge_heads_each_head_concatenated(x):
    return np.concatenate([x[..., h, :, :] for h in range(x.shape[-3])], axis=-1)


def log_softmax_logaddexp_reduce(x):
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


def softmax_exp_of_log_softmax(x):
    return np.exp(log_softmax(x))


NINTH_RIGHT = [
    _entry(f"{C1}/decode", decode_by_accumulating),
    _entry(f"{C1}/position_embedding", position_embedding_np_take),
    _entry(f"{C1}/sinusoidal_positions", sinusoidal_through_complex_exponentials),
    _entry(f"{C2}/layer_norm", layer_norm_std_squared),
    _entry(f"{C2}/merge_heads", merge_heads_each_head_concatenated),
    _entry(f"{C3}/log_softmax", log_softmax_logaddexp_reduce),
    _entry(f"{C3}/softmax", softmax_exp_of_log_softmax),
]
