"""Chapter 6, what a forward pass costs: parameters, FLOPs per token, KV-cache bytes.

Every case is a ``lib.Config`` (GPT-2 and Llama families, tied and untied heads, multi-head and
grouped-query attention; the hidden ones drawn with their sizes); the answers are exact integers.
The references come from ``lib``: the parameter count adds up ``lib.param_shapes`` (the table of
shapes ``lib.init_params`` fills), so no weights are ever allocated.
"""

import math

import numpy as np

import lib
from lib.checkpoint import checkpoint_layout

from ..exercise import Case, Exercise, choice, hidden, size
from .wrong import cost, table

ASSIGNMENT = "06-cost"
# The lib functions the scorer lends this chapter's students (``grader.lending``): ``Config``, the
# object every exercise reads its sizes from. ``GRADED``: the lib functions that compute this
# chapter's exercises, which the scorer's lib must never hold.
LENDS = ("Config",)
GRADED = ("checkpoint_layout", "KVCache", "Model", "init_params", "param_shapes", "load_pretrained")

# Keys of the checkpoint that hold vocabulary or position embeddings (and an untied LM head):
# what Kaplan et al. leave out of N.
EMBEDDING_KEYS = ("wte.weight", "wpe.weight", "embed_tokens.weight", "lm_head.weight")


def lib_param_count(config) -> int:
    """Number of weights of ``config`` (any mix of the switches), from ``lib``'s table of shapes."""
    return sum(math.prod(shape) for shape in lib.model.leaves(lib.param_shapes(config)))


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


def gpt2_config(g, **fixed) -> lib.Config:
    """A GPT-2-style config with drawn sizes (``fixed`` overrides any field)."""
    n_head = size(g, 4, 16)
    sizes = dict(
        vocab_size=size(g, 1000, 60000),
        n_ctx=2 ** size(g, 8, 11),
        d_model=n_head * 16 * size(g, 2, 8),
        n_layer=size(g, 2, 24),
        n_head=n_head,
    )
    return lib.Config.gpt2(**{**sizes, **fixed})


def llama_config(g, grouped: bool, **fixed) -> lib.Config:
    """A Llama-style config with drawn sizes; ``grouped``: fewer KV heads than query heads."""
    n_kv_head = size(g, 1, 8)
    n_head = n_kv_head * (size(g, 2, 8) if grouped else 1)
    d_model = n_head * 16 * size(g, 4, 8)
    sizes = dict(
        vocab_size=size(g, 1000, 130000),
        n_ctx=2 ** size(g, 10, 13),
        d_model=d_model,
        n_layer=size(g, 4, 48),
        n_head=n_head,
        n_kv_head=n_kv_head,
        d_ff=16 * size(g, d_model // 8, d_model // 4),
    )
    return lib.Config.llama(**{**sizes, **fixed})


# ---- count_params ------------------------------------------------------------------------------


def config_kinds(config) -> set[str]:
    """What only a config's sizes tell: grouped-query attention, and an MLP width other than 4 d."""
    found = {"grouped KV heads" if config.n_kv_head < config.n_head else "as many KV heads as heads"}
    if config.norm == "layernorm" and not config.bias:
        found.add("LayerNorm without biases")
    if config.bias and config.n_kv_head < config.n_head:
        found.add("biases with grouped KV heads")
    if config.bias and config.mlp == "swiglu":
        found.add("a SwiGLU MLP with biases")
    if config.mlp == "gelu":
        found.add(
            "a GPT-2 MLP of width 4 d"
            if config.d_ff == 4 * config.d_model
            else "a GPT-2 MLP of its own width"
        )
    return found


ABOVE_INT32 = "an answer above 2**31"  # a count kept in np.int32 wraps round on it


def _case(name, inputs, about=None, large=False):
    """A visible case (``about`` None) or a hidden one, with its config's kinds; ``large``: its
    answer is above 2**31 (a kind of its own, so a visible case has it too)."""
    kinds = config_kinds(inputs["config"]) | ({ABOVE_INT32} if large else set())
    return (
        Case(name, inputs, kinds=kinds) if about is None else hidden(name, inputs, kinds=kinds, about=about)
    )


def _large(g, draw, answer, tries=200):
    """``draw(g)``'s inputs redrawn until ``answer(**inputs)`` is above 2**31 (and off any multiple
    of 2**32, so a wrapped int32 is never right by chance)."""
    for _ in range(tries):
        inputs = draw(g)
        value = answer(**inputs)
        if value > 2**31 and value % 2**32:
            return inputs
    raise RuntimeError("no draw above 2**31")  # pragma: no cover - the draws below reach it at once


def _count_visible():
    return [
        _case("toy", {"config": TOY}),
        _case("small-llama", {"config": SMALL_LLAMA}),
        _case("gpt2-untied", {"config": GPT2_UNTIED}),
        # Above 2**31 weights, as the hidden Llama configs can be: a count kept in int32 wraps round.
        _case("llama-70b", {"config": LLAMA_70B}, large=True),
        # The switches mixed, as the docstring allows: a LayerNorm with a gain only, a biased c_attn
        # whose width is that of grouped heads.
        _case("gpt2-without-biases", {"config": GPT2_WITHOUT_BIASES}),
        # Biases without grouped heads, then with them: a slip in the SwiGLU biases and one in
        # the width of c_attn's bias fail on different cases.
        _case("llama-biased", {"config": LLAMA_BIASED}),
        _case("llama-gqa-biased", {"config": LLAMA_GQA_BIASED}),
    ]


GPT2_WITHOUT_BIASES = lib.Config.gpt2(vocab_size=500, n_ctx=128, d_model=64, n_layer=2, n_head=4, bias=False)
LLAMA_BIASED = lib.Config.llama(
    vocab_size=600, n_ctx=128, d_model=48, n_layer=2, n_head=4, n_kv_head=4, d_ff=136, bias=True
)
LLAMA_GQA_BIASED = lib.Config.llama(
    vocab_size=800, n_ctx=256, d_model=64, n_layer=2, n_head=8, n_kv_head=2, d_ff=172, bias=True
)


def _mixed_config(g, family: str, grouped: bool = True, **fixed) -> lib.Config:
    """A small config of ``family`` (``"gpt2"`` or ``"llama"``) with drawn sizes and
    ``fixed`` switches: small, because its count comes from arrays (``lib_param_count``);
    ``grouped``: fewer KV heads than query heads (a Llama config)."""
    n_kv_head = size(g, 1, 3)
    n_head = n_kv_head * (size(g, 2, 4) if grouped else 1)
    d_model = n_head * 8 * size(g, 1, 3)
    sizes = dict(
        vocab_size=size(g, 100, 2000), n_ctx=2 ** size(g, 6, 9), d_model=d_model, n_layer=size(g, 1, 4)
    )
    heads = dict(n_head=n_head, n_kv_head=n_kv_head) if family == "llama" else dict(n_head=n_head)
    return getattr(lib.Config, family)(
        **sizes, **heads, d_ff=8 * size(g, d_model // 4, d_model // 2), **fixed
    )


def _count_hidden(g):
    return [
        _case("gpt2", {"config": gpt2_config(g)}, "a GPT-2 config"),
        _case(
            "gpt2-wide",
            {"config": gpt2_config(g, d_ff=64 * size(g, 8, 64))},
            "a GPT-2 config with its own MLP width",
        ),
        _case(
            "gpt2-untied",
            {"config": gpt2_config(g, tie_embeddings=False)},
            "a GPT-2-style config with an untied head",
        ),
        _case(
            "llama-mha",
            {"config": llama_config(g, grouped=False)},
            "a Llama config with as many KV heads as query heads",
        ),
        _case(
            "llama-gqa-tied",
            {"config": llama_config(g, grouped=True, tie_embeddings=True)},
            "a Llama config with grouped KV heads and a tied head",
        ),
        _case(
            "gpt2-without-biases",
            {"config": _mixed_config(g, "gpt2", bias=False)},
            "a GPT-2-style config without biases (its LayerNorms have a gain only)",
        ),
        _case(
            "llama-biased",
            {"config": _mixed_config(g, "llama", grouped=False, bias=True)},
            "a Llama-style config with biases and as many KV heads as query heads",
        ),
        _case(
            "llama-gqa-biased",
            {"config": _mixed_config(g, "llama", bias=True)},
            "a Llama-style config with grouped KV heads and biases",
        ),
        _case(
            "large",
            _large(
                g,
                lambda g: {"config": llama_config(g, grouped=True, n_layer=size(g, 32, 96))},
                lib_param_count,
            ),
            "a large Llama config (more than 2**31 weights)",
            large=True,
        ),
    ]


COUNT_PARAMS = Exercise(
    name="count_params",
    visible=_count_visible,
    hidden=_count_hidden,
    reference=lambda config: lib_param_count(config),
    mistakes=table(
        cost.count_params,
        {
            "tied-twice": (
                {"tied_twice": True},
                "you counted the LM head as well as wte, but this config ties them (config.tie_embeddings): "
                "the head IS wte.T and adds no weights",
            ),
            "untied-missing": (
                {"untied_head": False},
                "the LM head is missing: with config.tie_embeddings False it is a separate (d, V) matrix",
            ),
            "no-biases": (
                {"biases": False},
                "the biases of the linear layers are missing (config.bias): c_attn, c_proj, c_fc and the "
                "MLP's c_proj each have one bias per output",
            ),
            "no-norms": (
                {"norms": False},
                "the norms' weights are missing: each LayerNorm has a gain and a bias (d each), each "
                "RMSNorm a gain (d); there are two per block and a final one",
            ),
            "no-final-norm": (
                {"final_norm": False},
                "the final norm ln_f is missing (one norm after the last block)",
            ),
            "no-positions": (
                {"positions": False},
                "the learned position table wpe (n_ctx x d) is missing (config.positions == 'learned')",
            ),
            "rope-positions": (
                {"positions": "always"},
                "a RoPE model (config.positions == 'rope') has no position table: its rotations are "
                "computed, not learned; count wpe (n_ctx x d) only when config.positions == 'learned'",
            ),
            "gqa-as-mha": (
                {"kv_heads": "n_head"},
                "you gave the keys and values n_head heads: they have n_kv_head heads (grouped-query "
                "attention), so c_attn has (n_head + 2 n_kv_head) * d_head columns",
            ),
            "swiglu-two": ({"swiglu_matrices": 2}, "SwiGLU has THREE matrices (gate, up and down), not two"),
            "swiglu-biases": (
                {"swiglu_biases": "3 d_ff"},
                "the SwiGLU biases are one per output: gate and up have d_ff each, but the down projection "
                "maps back to d_model, so it has d biases (2 * d_ff + d in all, not 3 * d_ff)",
            ),
            "d_ff-4d": (
                {"d_ff": "4d"},
                "the MLP's width is config.d_ff, not always 4 * d_model: read it from the config",
            ),
        },
    ),
    atol=0,
    rtol=0,
    check_dtype="int",
)

# ---- flops_per_token ---------------------------------------------------------------------------

FULL_CONTEXT = "a pass over the whole context (T = n_ctx)"


def _flops_visible():
    return [
        _case("toy", {"config": TOY, "T": 4}),
        Case(
            "gpt2-small", {"config": GPT2_SMALL, "T": 1024}, kinds=config_kinds(GPT2_SMALL) | {FULL_CONTEXT}
        ),
        _case("llama-gqa", {"config": SMALL_LLAMA, "T": 37}),
        _case("untied-one", {"config": GPT2_UNTIED, "T": 1}),
        # Above 2**31 FLOPs, as the hidden Llama configs can be: a count kept in int32 wraps round.
        _case("llama-7b", {"config": LLAMA_7B, "T": 100}, large=True),
    ]


def _flops_hidden(g):
    llama, grouped, small = (
        llama_config(g, grouped=False),
        llama_config(g, grouped=True, tie_embeddings=True),
        gpt2_config(g),
    )
    return [
        hidden(
            "llama",
            {"config": llama, "T": llama.n_ctx},
            kinds=config_kinds(llama) | {FULL_CONTEXT},
            about="a Llama config at its full context",
        ),
        _case(
            "gqa-tied",
            {"config": grouped, "T": size(g, 1, grouped.n_ctx)},
            "a Llama config with grouped KV heads and a tied head",
        ),
        _case(
            "untied-one",
            {"config": gpt2_config(g, tie_embeddings=False), "T": 1},
            "an untied GPT-2-style config",
        ),
        _case("gpt2", {"config": small, "T": size(g, 2, small.n_ctx)}, "a GPT-2 config"),
        _case(
            "large",
            _large(
                g,
                lambda g: {
                    "config": llama_config(g, grouped=True, n_layer=size(g, 32, 96)),
                    "T": size(g, 1, 4096),
                },
                lib_flops_per_token,
            ),
            "a large Llama config (more than 2**31 FLOPs)",
            large=True,
        ),
    ]


FLOPS_PER_TOKEN = Exercise(
    name="flops_per_token",
    visible=_flops_visible,
    hidden=_flops_hidden,
    reference=lambda config, T: lib_flops_per_token(config, T),
    mistakes=table(
        cost.flops_per_token,
        {
            "no-attention": (
                {"attention": 0},
                "this is 2N alone: add the attention term 2 * n_layer * T * d_model (the q k^T and "
                "weights @ v products, which grow with the context T and use no weights)",
            ),
            "with-embeddings": (
                {"n": "all"},
                "N here excludes the embeddings (token, position and an untied LM head): a lookup is not "
                "a multiplication. Subtract them from the parameter count",
            ),
            "macs": (
                {"factor": 1, "attention": 1},
                "you counted multiply-adds: each is 2 FLOPs (a multiply and an add), so both terms double",
            ),
            "training": (
                {"factor": 6, "attention": 6},
                "6N is a training step (forward and backward): a forward pass is 2N plus the attention term",
            ),
            "training-n": (
                {"factor": 6},
                "6N is a training step (forward and backward): a forward pass is 2N, one multiply and one add "
                "per weight, plus the attention term",
            ),
            "attention-4": (
                {"attention": 4},
                "the attention term is 2 * n_layer * T * d_model: you counted every query against all T "
                "keys, but under the causal mask query t sees t + 1 keys, about T / 2 on average",
            ),
            "attention-one-layer": (
                {"layers": False},
                "the attention term happens in every block: 2 * n_layer * T * d_model",
            ),
            "attention-T-squared": (
                {"keys": "T*T"},
                "the attention term is per token: one new query against the T keys, 2 * n_layer * T * "
                "d_model. T * T is every query of the sequence against every key, the whole pass's count",
            ),
        },
    ),
    atol=0,
    rtol=0,
    check_dtype="int",
)

# ---- kv_cache_bytes ----------------------------------------------------------------------------


F16, F32, F64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
I8 = np.dtype("int8")  # a quantised cache: one byte a number, and a name that is no float's


DTYPE_BYTES = (
    "a number's bytes are np.dtype(dtype).itemsize, for every dtype (an int8 cache has 1 byte a number): "
    "not the digits of the dtype's name, a table of float dtypes or np.finfo, which knows floats only"
)


def _kv_visible():
    return [
        _case("small-llama", {"config": SMALL_LLAMA, "T": 100, "dtype": F16}),
        _case("toy", {"config": TOY, "T": 3, "dtype": F32}),
        _case("one-token64", {"config": GPT2_UNTIED, "T": 1, "dtype": F64}),
        _case("int8", {"config": SMALL_LLAMA, "T": 100, "dtype": I8}),
        # Above 2**31 bytes, as a long context can be: a size kept in int32 wraps round.
        _case("llama-70b-long", {"config": LLAMA_70B, "T": 4096, "dtype": F32}, large=True),
    ]


def _kv_hidden(g):
    mha, deep, gpt2 = (
        llama_config(g, grouped=False),
        llama_config(g, grouped=True, n_layer=size(g, 60, 96)),
        gpt2_config(g),
    )
    return [
        _case(
            "llama-mha", {"config": mha, "T": mha.n_ctx, "dtype": F16}, "a Llama config at its full context"
        ),
        _case(
            "deep-gqa",
            {"config": deep, "T": size(g, 100, 4000), "dtype": F16},
            "a deep config with grouped KV heads",
        ),
        _case("gpt2", {"config": gpt2, "T": gpt2.n_ctx, "dtype": F32}, "a GPT-2 config, full context"),
        _case("one-token64", {"config": llama_config(g, grouped=True), "T": 1, "dtype": F64}, "one token"),
        _case(
            "int8",
            {"config": llama_config(g, grouped=True), "T": size(g, 100, 4000), "dtype": I8},
            "a cache quantised to int8",
        ),
        _case(
            "long",
            _large(g, _long_context, lib_kv_cache_bytes),
            "a deep config over a long context (more than 2**31 bytes)",
            large=True,
        ),
    ]


def _long_context(g):
    config = llama_config(g, grouped=size(g, 0, 1) == 1, n_layer=size(g, 32, 96), n_ctx=2 ** size(g, 14, 17))
    return {
        "config": config,
        "T": size(g, config.n_ctx // 2, config.n_ctx),
        "dtype": (F16, F32)[size(g, 0, 1)],
    }


KV_CACHE_BYTES = Exercise(
    name="kv_cache_bytes",
    visible=_kv_visible,
    hidden=_kv_hidden,
    reference=lambda config, T, dtype: lib_kv_cache_bytes(config, T, dtype),
    mistakes=table(
        cost.kv_cache_bytes,
        {
            "k-only": (
                {"kv": False},
                "that is half the cache: it keeps the keys AND the values (a factor 2)",
            ),
            "n-head": (
                {"heads": "n_head"},
                "you used n_head (or d_model): keys and values have n_kv_head heads, fewer than the query "
                "heads under grouped-query attention; that is the point of it",
            ),
            "bits": (
                {"unit": "bits"},
                "this is in bits: a number of dtype takes np.dtype(dtype).itemsize BYTES (8 bits each)",
            ),
            "one-layer": (
                {"layers": False},
                "every block keeps its own keys and values: multiply by n_layer",
            ),
            "n-ctx": (
                {"tokens": "n_ctx"},
                "you used the whole context n_ctx: count the T tokens in the cache",
            ),
        },
    ),
    atol=0,
    rtol=0,
    check_dtype="int",
    error_hints={
        "itemsize": "np.dtype(dtype).itemsize is the number of bytes of one number",
        # the bytes read from the dtype's name ("float16"[-2:]), a table of float dtypes, np.finfo
        **dict.fromkeys(("invalid literal for int()", "'int8'", "not inexact"), DTYPE_BYTES),
    },
)

# ---- concept checks ----------------------------------------------------------------------------

Q_TWO = choice("q_two", ("a", "b", "c", "d"))
Q_DECODE = choice("q_decode", ("a", "b", "c", "d"))
Q_GQA = choice("q_gqa", ("a", "b", "c", "d"))

EXERCISES = [COUNT_PARAMS, FLOPS_PER_TOKEN, KV_CACHE_BYTES, Q_TWO, Q_DECODE, Q_GQA]
