"""Chapter 6, what a forward pass costs: parameters, FLOPs per token, KV-cache bytes.

Every case is a ``lib.Config`` (GPT-2 and Llama families, tied and untied heads, multi-head and
grouped-query attention); the answers are exact integers. The references come from ``lib``: the
parameter count lists every tensor of the config's checkpoint (``lib.checkpoint.checkpoint_layout``,
the same table ``lib.load_pretrained`` checks a file against), so no weights are ever allocated.
"""

import math

import numpy as np

import lib
from lib.checkpoint import checkpoint_layout

from ..exercise import Case, Exercise, Mistake, choice

ASSIGNMENT = "06-cost"

# Keys of the checkpoint that hold vocabulary or position embeddings (and an untied LM head):
# what Kaplan et al. leave out of N.
EMBEDDING_KEYS = ("wte.weight", "wpe.weight", "embed_tokens.weight", "lm_head.weight")


def lib_param_count(config) -> int:
    """Number of weights in ``config``'s checkpoint, from ``lib``'s table of tensors."""
    return sum(math.prod(shape) for shape, _, _ in checkpoint_layout(config).values())


def lib_embedding_count(config) -> int:
    """Weights in the token and position embeddings and an untied LM head."""
    return sum(
        math.prod(shape)
        for key, (shape, _, _) in checkpoint_layout(config).items()
        if key.endswith(EMBEDDING_KEYS)
    )


def lib_flops_per_token(config, T) -> int:
    """``2 * N_nonembedding + 2 * n_layer * T * d_model`` (Kaplan et al. 2020)."""
    return (
        2 * (lib_param_count(config) - lib_embedding_count(config)) + 2 * config.n_layer * T * config.d_model
    )


def lib_kv_cache_bytes(config, T, dtype) -> int:
    """Keys and values of T tokens, one sequence: what ``KVCache.nbytes()`` reports after T tokens."""
    return 2 * config.n_layer * config.n_kv_head * config.d_head * T * np.dtype(dtype).itemsize


# ---- the configs -------------------------------------------------------------------------------

TOY = lib.Config.gpt2(vocab_size=3, n_ctx=4, d_model=4, n_layer=1, n_head=2, d_ff=16)
SMALL_LLAMA = lib.Config.llama(
    vocab_size=1000, n_ctx=256, d_model=64, n_layer=3, n_head=8, n_kv_head=2, d_ff=172
)
SHAKESPEARE = lib.Config.gpt2(vocab_size=78, n_ctx=256, d_model=192, n_layer=4, n_head=4)
GPT2_SMALL = lib.Config.gpt2()
GPT2_MEDIUM = lib.Config.gpt2(d_model=1024, n_layer=24, n_head=16)
GPT2_UNTIED = lib.Config.gpt2(
    vocab_size=5000, n_ctx=512, d_model=192, n_layer=3, n_head=6, d_ff=384, tie_embeddings=False
)
LLAMA_7B = lib.Config.llama(
    vocab_size=32000, n_ctx=2048, d_model=4096, n_layer=32, n_head=32, n_kv_head=32, d_ff=11008
)
LLAMA_GQA_TIED = lib.Config.llama(
    vocab_size=128256,
    n_ctx=8192,
    d_model=2048,
    n_layer=16,
    n_head=32,
    n_kv_head=8,
    d_ff=8192,
    tie_embeddings=True,
)
LLAMA_70B = lib.Config.llama(
    vocab_size=32000, n_ctx=4096, d_model=8192, n_layer=80, n_head=64, n_kv_head=8, d_ff=28672
)


# ---- count_params ------------------------------------------------------------------------------


def count_variant(
    config,
    *,
    biases=True,
    norms=True,
    final_norm=True,
    positions=True,
    kv_heads=None,
    swiglu_matrices=3,
    untied_head=True,
    tied_twice=False,
) -> int:
    """A parameter count from the config's switches, with one thing optionally done wrong."""
    c = config
    d, dh, L, V = c.d_model, c.d_head, c.n_layer, c.vocab_size
    kv = c.n_kv_head if kv_heads is None else kv_heads
    bias = c.bias and biases
    norm = (2 * d if c.norm == "layernorm" and c.bias else d) if norms else 0
    qkv = (c.n_head + 2 * kv) * dh
    per_layer = 2 * norm + d * qkv + bias * qkv + d * d + bias * d
    if c.mlp == "swiglu":
        per_layer += swiglu_matrices * d * c.d_ff + bias * (2 * c.d_ff + d)
    else:
        per_layer += 2 * d * c.d_ff + bias * (c.d_ff + d)
    total = V * d + L * per_layer + (norm if final_norm else 0)
    if c.positions == "learned" and positions:
        total += c.n_ctx * d
    if (not c.tie_embeddings and untied_head) or (c.tie_embeddings and tied_twice):
        total += V * d
    return int(total)


def _count_cases():
    return [
        Case("toy", {"config": TOY}),
        Case("small-llama", {"config": SMALL_LLAMA}),
        Case("gpt2-small", {"config": GPT2_SMALL}, True, "GPT-2 small"),
        Case("gpt2-medium", {"config": GPT2_MEDIUM}, True, "GPT-2 medium"),
        Case("gpt2-untied", {"config": GPT2_UNTIED}, True, "a GPT-2-style config with an untied head"),
        Case("llama-7b", {"config": LLAMA_7B}, True, "a 7B Llama config (32 KV heads)"),
        Case(
            "llama-gqa-tied",
            {"config": LLAMA_GQA_TIED},
            True,
            "a Llama config with 8 KV heads and a tied head",
        ),
    ]


COUNT_PARAMS = Exercise(
    name="count_params",
    cases=_count_cases,
    reference=lambda config: lib_param_count(config),
    mistakes=(
        Mistake(
            "tied-twice",
            lambda config: count_variant(config, tied_twice=True),
            "you counted the LM head as well as wte, but this config ties them "
            "(config.tie_embeddings): the head IS wte.T and adds no weights",
        ),
        Mistake(
            "untied-missing",
            lambda config: count_variant(config, untied_head=False),
            "the LM head is missing: with config.tie_embeddings False it is a separate (d, V) matrix",
        ),
        Mistake(
            "no-biases",
            lambda config: count_variant(config, biases=False),
            "the biases of the linear layers are missing (config.bias): c_attn, c_proj, c_fc and the "
            "MLP's c_proj each have one bias per output",
        ),
        Mistake(
            "no-norms",
            lambda config: count_variant(config, norms=False),
            "the norms' weights are missing: each LayerNorm has a gain and a bias (d each), each "
            "RMSNorm a gain (d); there are two per block and a final one",
        ),
        Mistake(
            "no-final-norm",
            lambda config: count_variant(config, final_norm=False),
            "the final norm ln_f is missing (one norm after the last block)",
        ),
        Mistake(
            "no-positions",
            lambda config: count_variant(config, positions=False),
            "the learned position table wpe (n_ctx x d) is missing (config.positions == 'learned')",
        ),
        Mistake(
            "gqa-as-mha",
            lambda config: count_variant(config, kv_heads=config.n_head),
            "you gave the keys and values n_head heads: they have n_kv_head heads (grouped-query "
            "attention), so c_attn has (n_head + 2 n_kv_head) * d_head columns",
        ),
        Mistake(
            "swiglu-two",
            lambda config: count_variant(config, swiglu_matrices=2),
            "SwiGLU has THREE matrices (gate, up and down), not two",
        ),
    ),
    atol=0,
    rtol=0,
    check_dtype=False,
)

# ---- flops_per_token ---------------------------------------------------------------------------


def _n_nonembedding(config) -> int:
    return lib_param_count(config) - lib_embedding_count(config)


def _flops_cases():
    return [
        Case("toy", {"config": TOY, "T": 4}),
        Case("gpt2-small", {"config": GPT2_SMALL, "T": 1024}),
        Case("llama-7b", {"config": LLAMA_7B, "T": 4096}, True, "a 7B Llama config at T = 4096"),
        Case(
            "gqa-tied",
            {"config": LLAMA_GQA_TIED, "T": 2048},
            True,
            "a Llama config with 8 KV heads, T = 2048",
        ),
        Case("untied-one", {"config": GPT2_UNTIED, "T": 1}, True, "an untied GPT-2-style config at T = 1"),
        Case(
            "shakespeare",
            {"config": SHAKESPEARE, "T": 256},
            True,
            "the Shakespeare model's config at T = 256",
        ),
    ]


def _attn(config, T, factor=2, layers=True):
    return factor * (config.n_layer if layers else 1) * T * config.d_model


FLOPS_PER_TOKEN = Exercise(
    name="flops_per_token",
    cases=_flops_cases,
    reference=lambda config, T: lib_flops_per_token(config, T),
    mistakes=(
        Mistake(
            "no-attention",
            lambda config, T: 2 * _n_nonembedding(config),
            "this is 2N alone: add the attention term 2 * n_layer * T * d_model (the q k^T and "
            "weights @ v products, which grow with the context T and use no weights)",
        ),
        Mistake(
            "with-embeddings",
            lambda config, T: 2 * lib_param_count(config) + _attn(config, T),
            "N here excludes the embeddings (token, position and an untied LM head): a lookup is not "
            "a multiplication. Subtract them from the parameter count",
        ),
        Mistake(
            "macs",
            lambda config, T: _n_nonembedding(config) + _attn(config, T, factor=1),
            "you counted multiply-adds: each is 2 FLOPs (a multiply and an add), so both terms double",
        ),
        Mistake(
            "training",
            lambda config, T: 6 * _n_nonembedding(config) + _attn(config, T, factor=6),
            "6N is a training step (forward and backward): a forward pass is 2N plus the attention term",
        ),
        Mistake(
            "attention-4",
            lambda config, T: 2 * _n_nonembedding(config) + _attn(config, T, factor=4),
            "the attention term is 2 * n_layer * T * d_model: you counted every query against all T "
            "keys, but under the causal mask query t sees t + 1 keys, about T / 2 on average",
        ),
        Mistake(
            "attention-one-layer",
            lambda config, T: 2 * _n_nonembedding(config) + _attn(config, T, layers=False),
            "the attention term happens in every block: 2 * n_layer * T * d_model",
        ),
    ),
    atol=0,
    rtol=0,
    check_dtype=False,
)

# ---- kv_cache_bytes ----------------------------------------------------------------------------


def _kv_cases():
    f16, f32, f64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
    return [
        Case("small-llama", {"config": SMALL_LLAMA, "T": 100, "dtype": f16}),
        Case("toy", {"config": TOY, "T": 3, "dtype": f32}),
        Case(
            "llama-7b",
            {"config": LLAMA_7B, "T": 4096, "dtype": f16},
            True,
            "a 7B Llama config, 4096 tokens, float16",
        ),
        Case(
            "llama-70b",
            {"config": LLAMA_70B, "T": 1000, "dtype": f16},
            True,
            "an 80-layer config with 8 KV heads",
        ),
        Case(
            "gpt2-small",
            {"config": GPT2_SMALL, "T": 1024, "dtype": f32},
            True,
            "GPT-2 small, full context, float32",
        ),
        Case("one-token64", {"config": LLAMA_GQA_TIED, "T": 1, "dtype": f64}, True, "one token, float64"),
    ]


def _kv(config, T, itemsize, *, kv=True, heads=None, layers=True):
    heads = config.n_kv_head if heads is None else heads
    return (2 if kv else 1) * (config.n_layer if layers else 1) * heads * config.d_head * T * itemsize


KV_CACHE_BYTES = Exercise(
    name="kv_cache_bytes",
    cases=_kv_cases,
    reference=lambda config, T, dtype: lib_kv_cache_bytes(config, T, dtype),
    mistakes=(
        Mistake(
            "k-only",
            lambda config, T, dtype: _kv(config, T, np.dtype(dtype).itemsize, kv=False),
            "that is half the cache: it keeps the keys AND the values (a factor 2)",
        ),
        Mistake(
            "n-head",
            lambda config, T, dtype: _kv(config, T, np.dtype(dtype).itemsize, heads=config.n_head),
            "you used n_head (or d_model): keys and values have n_kv_head heads, fewer than the query "
            "heads under grouped-query attention; that is the point of it",
        ),
        Mistake(
            "bits",
            lambda config, T, dtype: _kv(config, T, np.dtype(dtype).itemsize * 8),
            "this is in bits: a number of dtype takes np.dtype(dtype).itemsize BYTES (8 bits each)",
        ),
        Mistake(
            "one-layer",
            lambda config, T, dtype: _kv(config, T, np.dtype(dtype).itemsize, layers=False),
            "every block keeps its own keys and values: multiply by n_layer",
        ),
        Mistake(
            "n-ctx",
            lambda config, T, dtype: _kv(config, config.n_ctx, np.dtype(dtype).itemsize),
            "you used the whole context n_ctx: count the T tokens in the cache",
        ),
    ),
    atol=0,
    rtol=0,
    check_dtype=False,
    error_hints={"itemsize": "np.dtype(dtype).itemsize is the number of bytes of one number"},
)

# ---- concept checks ----------------------------------------------------------------------------

Q_TWO = choice("q_two", ("a", "b", "c", "d"))
Q_DECODE = choice("q_decode", ("a", "b", "c", "d"))
Q_GQA = choice("q_gqa", ("a", "b", "c", "d"))

EXERCISES = [COUNT_PARAMS, FLOPS_PER_TOKEN, KV_CACHE_BYTES, Q_TWO, Q_DECODE, Q_GQA]
