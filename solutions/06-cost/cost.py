# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # What a forward pass costs
#
# :::{admonition} In this chapter
# :class: note
# - **You will be able to** count a model's weights from its configuration, estimate the
#   arithmetic of a forward pass per token and the memory of its KV cache, and explain with a
#   roofline why reading a prompt is limited by arithmetic and generating a token by memory.
# - **It assumes** chapters 2 and 4 (the parts of a block, the KV cache), and powers of ten.
# - **Time:** about 1.5 hours: 50 minutes of reading, 40 minutes for three exercises and three
#   questions.
# :::
#
# The last chapter followed every number of a model with a few hundred weights. Real models have
# millions or billions, and three questions decide whether one can run on a given machine, and
# how fast:
#
# 1. **How many weights?** They all have to be stored, and read, for every forward pass.
# 2. **How much arithmetic per token?** Counted in floating-point operations (FLOPs).
# 3. **How much memory does generation need besides the weights?** Mostly the cache of keys and
#    values of the tokens seen so far.
#
# Each has a short formula in terms of the configuration, and you will write all three. Then the
# chapter times `lib` on the machine that runs it (for this web page, the machine that built it,
# named with its measurements), to see why the same forward pass is limited by arithmetic when it
# reads a whole prompt and by memory traffic when it generates one token at a time.
#
# :::{admonition} How the checks work
# :class: tip
# Each exercise takes a `lib.Config` and returns one exact integer. The check runs it on visible
# configs and recognises the usual slips (a tied head counted twice, a forgotten attention term,
# bits instead of bytes, ...).
# <!-- class only -->
# The grader adds configs you do not see, from GPT-2 small to a 70-billion-parameter Llama.
# Before you submit, run `nbgrader validate cost.ipynb` in a terminal in this folder: it runs the
# notebook from a fresh kernel, as the grader does, and prints every check that fails.
# <!-- end class only -->
# <!-- reader only -->
# Reading on your own, you submit nothing: the check is all the feedback there is, and it comes at
# once, as often as you run it. In the web book, a check's place shows what a correct function
# returns on its example, with the solution folded under "Show solution"; a concept check's answer
# and its reason are folded under "Show the answer". Try first, then unfold. In a notebook, a
# concept check's cell says at once whether your letter is right, and why.
# <!-- end reader only -->
# :::

# %%
import math
import os
import time

import numpy as np

import lib
from grader.check import check
from lib.checkpoint import checkpoint_layout

GRADING = "NBGRADER_EXECUTION" in os.environ  # the autograder skips figures and timings
rng = np.random.default_rng(0)
if not GRADING:  # presentation only: grading neither needs it nor sees it
    import matplotlib.pyplot as plt

    import bookkit

    bookkit.style.use()  # figures as SVG, sized to read on a phone

toy = lib.load_pretrained("toy")
model = lib.load_pretrained("shakespeare")
about_model = "the Shakespeare model"
print(f"{about_model}: {model}")


# %%
def n_params(config):
    """Every weight of a config, by listing the tensors of its checkpoint (nothing is allocated).

    lib.checkpoint.checkpoint_layout is the table lib.load_pretrained checks a file against:
    one entry per tensor, with its shape.
    """
    return sum(math.prod(shape) for shape, _, _ in checkpoint_layout(config).values())


def gpt2_config(d, L, h):
    return lib.Config.gpt2(d_model=d, n_layer=L, n_head=h)


def llama1_config(d, L, h, d_ff):
    """LLaMA (Touvron et al. 2023): 32,000 tokens, multi-head attention, untied head."""
    return lib.Config.llama(
        vocab_size=32000, n_ctx=2048, d_model=d, n_layer=L, n_head=h, n_kv_head=h, d_ff=d_ff
    )


# %% [markdown]
# ## How many weights
#
# Every weight of a decoder-only transformer sits in one of a few places. With $V$ tokens, width
# $d$, $L$ blocks, $h$ query heads and $h_{kv}$ key/value heads of width $d_\text{head} = d/h$, and
# an MLP of width $d_\text{ff}$:
#
# | where | GPT-2 family | Llama family |
# |---|---|---|
# | token embeddings `wte` | $V d$ | $V d$ |
# | learned positions `wpe` | $n_\text{ctx} d$ | none (RoPE has no weights) |
# | each norm | $2d$ (gain and bias) | $d$ (gain) |
# | attention `c_attn` | $d \cdot (h + 2h_{kv}) d_\text{head}$ + as many biases | the same, no biases |
# | attention `c_proj` | $d^2 + d$ | $d^2$ |
# | MLP | $2 d\, d_\text{ff} + d_\text{ff} + d$ | $3 d\, d_\text{ff}$ (gate, up, down) |
# | LM head | $V d$ if untied, nothing if tied | the same |
#
# Each block has two norms, one attention and one MLP, and there is a final norm after the last
# block. For GPT-2, where $h_{kv} = h$ and $d_\text{ff} = 4d$, a block holds
# $12 d^2 + 13 d$ weights, so for a wide model the count is close to $12 L d^2$ plus the
# embeddings. A **tied** head {cite}`press2017using` reuses `wte` and adds nothing; an untied one
# adds another $V d$.


# %% nbgrader={"grade": false, "grade_id": "count_params-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_params(config):
    """The number of weights of a model with this configuration.

    Task: add up the table above for config's switches: config.positions ("learned" has wpe),
        config.norm ("layernorm" with config.bias has gain and bias, else a gain only), config.bias
        (biases on every linear layer), config.mlp ("gelu": c_fc and c_proj; "swiglu": three
        matrices), config.tie_embeddings (an untied head adds V*d), config.n_kv_head.
    Shapes: config, a lib.Config -> an int
    Example: count_params(toy.config) == 280 (the toy of chapter 5);
        count_params(lib.Config.gpt2()) is GPT-2 small's count, printed below.
    Hints: the fields are config.vocab_size, n_ctx, d_model, n_layer, n_head, n_kv_head, d_head
        and d_ff. Count one block, multiply by n_layer, then add what is outside the blocks.
    """
    ### BEGIN SOLUTION
    c = config
    d, V = c.d_model, c.vocab_size
    bias = 1 if c.bias else 0
    norm = 2 * d if (c.norm == "layernorm" and c.bias) else d
    qkv = (c.n_head + 2 * c.n_kv_head) * c.d_head
    attention = d * qkv + bias * qkv + d * d + bias * d
    if c.mlp == "swiglu":
        mlp = 3 * d * c.d_ff + bias * (2 * c.d_ff + d)
    else:
        mlp = 2 * d * c.d_ff + bias * (c.d_ff + d)
    total = V * d + c.n_layer * (2 * norm + attention + mlp) + norm
    if c.positions == "learned":
        total += c.n_ctx * d
    if not c.tie_embeddings:
        total += V * d
    return total
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "count_params", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("06-cost/count_params", count_params)

# %% [markdown]
# `lib` can count without any formula: a checkpoint is a list of tensors, and `lib` knows every
# tensor's shape for a given config (the table it checks files against), so it can add up the
# sizes without allocating a single weight. For models that are loaded, `model.num_params()`
# counts the arrays themselves, and for small configs so can the leaves of `lib.init_params`.
# The three agree:

# %%
checks = [
    ("the toy (chapter 5)", toy.config, toy.num_params()),
    (about_model, model.config, model.num_params()),
]
for config in [
    lib.Config.gpt2(vocab_size=100, n_ctx=32, d_model=24, n_layer=2, n_head=3),
    lib.Config.gpt2(vocab_size=100, n_ctx=32, d_model=24, n_layer=2, n_head=3, d_ff=40, tie_embeddings=False),
    lib.Config.llama(vocab_size=100, n_ctx=32, d_model=24, n_layer=2, n_head=4, n_kv_head=2, d_ff=64),
    lib.Config.llama(
        vocab_size=100, n_ctx=32, d_model=24, n_layer=3, n_head=4, n_kv_head=1, d_ff=64, tie_embeddings=True
    ),
]:
    params = lib.init_params(config)
    arrays = sum(a.size for a in lib.model.leaves(params))
    checks.append(
        (
            f"random {lib.checkpoint.family(config)}, L={config.n_layer}, kv={config.n_kv_head}, tied={config.tie_embeddings}",
            config,
            arrays,
        )
    )
print(f"{'model':54} {'arrays':>10} {'checkpoint table':>17}")
for name, config, arrays in checks:
    print(f"{name:54} {arrays:10,} {n_params(config):17,}")
print(
    f"\nGPT-2 small, lib.Config.gpt2(): {n_params(lib.Config.gpt2()):,} weights (its 0.5 GB are never allocated here)"
)

# %% [markdown]
# ### Published sizes
#
# Model papers name their models by size. The GPT-2 paper {cite}`radford2019language` lists four
# models of 117M, 345M, 762M and 1542M parameters; the LLaMA paper {cite}`touvron2023llama` lists
# 6.7B, 13.0B, 32.5B and 65.2B. Here are the same configurations counted by `lib` (the width of
# LLaMA's SwiGLU, which the paper does not print, is that of the released checkpoints):

# %%
published = [
    ("GPT-2", "117M", gpt2_config(768, 12, 12)),
    ("GPT-2", "345M", gpt2_config(1024, 24, 16)),
    ("GPT-2", "762M", gpt2_config(1280, 36, 20)),
    ("GPT-2", "1542M", gpt2_config(1600, 48, 25)),
    ("LLaMA", "6.7B", llama1_config(4096, 32, 32, 11008)),
    ("LLaMA", "13.0B", llama1_config(5120, 40, 40, 13824)),
    ("LLaMA", "32.5B", llama1_config(6656, 60, 52, 17920)),
    ("LLaMA", "65.2B", llama1_config(8192, 80, 64, 22016)),
]
print(
    f"{'model':7} {'paper':>6} {'d':>5} {'L':>3} {'h':>3} {'d_ff':>6} {'V':>6} {'tied':>5} {'counted by lib':>16}"
)
for family_name, size, c in published:
    print(
        f"{family_name:7} {size:>6} {c.d_model:5} {c.n_layer:3} {c.n_head:3} {c.d_ff:6} {c.vocab_size:6} {c.tie_embeddings!s:>5} {n_params(c):16,}"
    )

# %% [markdown]
# The LLaMA counts round to the paper's. The GPT-2 ones do not: every released GPT-2 checkpoint has
# more weights than the paper's table lists. A size in a paper's table is a name more than a
# measurement; when it matters, count the tensors.
#
# Where do the weights go? The embeddings are a large share of a small model with a large
# vocabulary, and a negligible one of a wide model, because blocks grow like $d^2$ and embeddings
# like $d$:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Horizontal stacked bars, one per model from the Shakespeare model to LLaMA 65B, showing the fraction of weights in embeddings, attention, the MLP, norms and an untied LM head; the embedding share shrinks as models get wider and the MLP share grows."}}
GROUPS = {
    "embeddings": ("wte.weight", "wpe.weight", "embed_tokens.weight"),
    "LM head": ("lm_head.weight",),
    "norms": (
        "ln_1.weight",
        "ln_1.bias",
        "ln_2.weight",
        "ln_2.bias",
        "ln_f.weight",
        "ln_f.bias",
        "layernorm.weight",
        "norm.weight",
    ),
    "attention": (
        "attn.c_attn.weight",
        "attn.c_attn.bias",
        "attn.c_proj.weight",
        "attn.c_proj.bias",
        "_proj.weight",
    ),
    "MLP": (
        "mlp.c_fc.weight",
        "mlp.c_fc.bias",
        "mlp.c_proj.weight",
        "mlp.c_proj.bias",
        "gate_proj.weight",
        "up_proj.weight",
        "down_proj.weight",
    ),
}


def group_of(key):
    for group in ("embeddings", "LM head", "norms", "MLP", "attention"):  # MLP before attention: "_proj"
        if key.endswith(GROUPS[group]):
            return group
    raise KeyError(key)


def param_groups(config):
    counts = dict.fromkeys(GROUPS, 0)
    for key, (shape, _, _) in checkpoint_layout(config).items():
        counts[group_of(key)] += math.prod(shape)
    return counts


shares = {"Shakespeare": model.config} | {
    f"{f} {s}": c for f, s, c in published if s in ("117M", "1542M", "6.7B", "65.2B")
}
if not GRADING:
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    left = np.zeros(len(shares))
    table_ = np.array([[param_groups(c)[g] / n_params(c) for g in GROUPS] for c in shares.values()])
    for j, group in enumerate(GROUPS):
        ax.barh(list(shares), table_[:, j], left=left, label=group)
        left += table_[:, j]
    ax.invert_yaxis()
    ax.set_xlabel("share of the weights")
    ax.legend(ncol=3, loc="lower center", bbox_to_anchor=(0.4, 1.0), fontsize=9)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## How much arithmetic per token
#
# A linear layer multiplies a token's vector $x \in \mathbb{R}^{d_\text{in}}$ by a matrix
# $W \in \mathbb{R}^{d_\text{in} \times d_\text{out}}$: each of the $d_\text{in} d_\text{out}$ weights
# is used in exactly one multiplication and one addition. Counting both as floating-point
# operations, a token costs **2 FLOPs per weight** it meets. Every weight of every block meets every
# token once, so the blocks cost about $2N$ FLOPs per token, where $N$ counts the weights outside
# the embeddings: a lookup is a copy, not a multiplication. This is the **2N rule**
# {cite}`kaplan2020scaling`.
#
# Attention adds work that uses no weights at all. A query at position $t$ takes a dot product with
# each of the $t + 1$ keys it may see, and then a weighted sum of as many values: $2(t + 1) d$
# multiply-adds over all heads of a layer, $4(t + 1)d$ FLOPs. Averaged over the positions of a
# $T$-token pass that is about $2Td$ per layer, so a forward pass costs, in FLOPs per token,
#
# $$C_\text{forward} \approx 2N + 2\, n_\text{layer}\, T\, d,$$
#
# the count of Kaplan et al. {cite}`kaplan2020scaling`. It leaves out the norms, the softmax and
# GELU (a few FLOPs per number, not per weight) and, by convention, the LM head's $2dV$, which is
# small when $V \ll N / d$.


# %% nbgrader={"grade": false, "grade_id": "flops_per_token-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def flops_per_token(config, T):
    """Forward FLOPs per token of a T-token pass: Kaplan et al.'s count.

    Task: return 2 * N + 2 * n_layer * T * d_model, where N is the number of weights (your
        count_params) minus the embeddings: the token embeddings wte (V * d), the learned positions
        wpe (n_ctx * d, GPT-2 family only) and an untied LM head (V * d, if not tied).
    Shapes: config, a lib.Config; T, an int (the context length) -> an int
    Example: for the toy (chapter 5), N = 280 - 12 - 16 = 252 and flops_per_token(toy.config, 4)
        == 2 * 252 + 2 * 1 * 4 * 4 == 536.
    Hints: two FLOPs per multiply-add; the attention term grows with T and happens in every layer.
    """
    ### BEGIN SOLUTION
    c = config
    embeddings = c.vocab_size * c.d_model
    if c.positions == "learned":
        embeddings += c.n_ctx * c.d_model
    if not c.tie_embeddings:
        embeddings += c.vocab_size * c.d_model
    n = count_params(c) - embeddings
    return 2 * n + 2 * c.n_layer * T * c.d_model
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "flops_per_token", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("06-cost/flops_per_token", flops_per_token)


# %% [markdown]
# Below, the same count computed from `lib`'s table of tensors. The attention term grows with the
# context and the $2N$ term does not; they are equal at $T = N / (n_\text{layer} d)$, which is
# about $12d$ for a GPT-2-shaped block. Short of that, a model's cost per token is essentially its
# size. Compare each crossing point with the model's context length, printed beside it: in the
# figure a curve is solid up to that length and dashed past it, where the model itself never runs.


# %%
def n_embedding(config):
    keys = GROUPS["embeddings"] + GROUPS["LM head"]
    return sum(math.prod(s) for k, (s, _, _) in checkpoint_layout(config).items() if k.endswith(keys))


def kaplan_flops(config, T):
    """2 N_nonembedding + 2 n_layer T d, from lib's table of tensors."""
    return 2 * (n_params(config) - n_embedding(config)) + 2 * config.n_layer * T * config.d_model


for name, c in [("GPT-2 117M", published[0][2]), ("LLaMA 6.7B", published[4][2])]:
    n = n_params(c) - n_embedding(c)
    print(
        f"{name}: N = {n:,} non-embedding weights; 2N = {2 * n / 1e9:.3g} GFLOP per token; "
        f"attention term = 2N at T = {n / (c.n_layer * c.d_model):,.0f} (context length {c.n_ctx:,}); "
        f"LM head 2dV = {2 * c.d_model * c.vocab_size / 1e9:.3g} GFLOP"
    )

# %% tags=["hide-input"] mystnb={"image": {"alt": "Log-log plot of forward FLOPs per token against context length T for GPT-2 117M and LLaMA 6.7B: each curve is flat at 2N for short contexts and bends upwards where the attention term catches up with 2N, later for the wider model; each curve is solid up to its model's context length and dashed past it."}}
if not GRADING:
    Ts = np.logspace(0, 5, 60)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, c in [("GPT-2 117M", published[0][2]), ("LLaMA 6.7B", published[4][2])]:
        total = np.array([kaplan_flops(c, T) for T in Ts])
        inside = Ts <= c.n_ctx  # the lengths the model can take
        past = Ts >= Ts[inside].max()  # from the last of them on, so that the two parts meet
        line = ax.loglog(Ts[inside], total[inside], label=f"{name}: 2N + attention")[0]
        ax.loglog(Ts[past], total[past], ls="--", lw=1, color=line.get_color())
        ax.loglog(
            Ts, [kaplan_flops(c, 0)] * len(Ts), ls=":", color=line.get_color(), label=f"{name}: 2N alone"
        )
    ax.set_xlabel("context length T (tokens)")
    ax.set_ylabel("FLOPs per token")
    ax.legend(fontsize=9)
    ax.set_title("Attention matters only for long contexts")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# **Concept check.** A model has 7 billion non-embedding weights. About how many floating-point
# operations does one forward pass over a prompt of 1,000 tokens take, leaving out attention's
# $T$-dependent term?
#
# - (a) $7 \times 10^{12}$
# - (b) $1.4 \times 10^{10}$
# - (c) $1.4 \times 10^{13}$
# - (d) $4.2 \times 10^{13}$

# %% nbgrader={"grade": false, "grade_id": "q_two-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_two = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_two = "c"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_two", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("06-cost/q_two", answer_q_two)

# %% [markdown]
# ### What one machine does with it
#
# How close does `lib` come to that count in practice? The cell below times `model.forward` on
# the Shakespeare model for prompts of a few lengths and divides the FLOPs by the time. For
# comparison it measures two things NumPy does at full speed on the same machine: a square float32
# matrix product (a pure arithmetic test) and a matrix-vector product over a matrix far larger than
# the processor's caches (which does two FLOPs per number it reads, so it measures how fast memory
# can be read). The output gives their sizes, and its first line names the machine and the date:
# on this web page, the machine that built the book, which may have been busy with other work, so
# the numbers move from one build to the next.


# %%
def best_time(f, repeats=5):
    """The fastest of a few runs (the least disturbed by everything else on the machine)."""
    f()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


if not GRADING:
    print(bookkit.host.measured_on())
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    gemm_flops_per_s = 2 * 1024**3 / best_time(lambda: a @ a)
    big = rng.random((5000, 5000), dtype=np.float32)  # 100 MB
    vec = rng.random(5000, dtype=np.float32)
    bandwidth = big.nbytes / best_time(lambda: big @ vec)
    del big
    print(f"float32 GEMM 1024 x 1024:    {gemm_flops_per_s / 1e9:6.1f} GFLOP/s  (arithmetic)")
    print(
        f"float32 GEMV over {5000 * 5000 * 4 / 1e6:.0f} MB:    {bandwidth / 1e9:6.1f} GB/s      (reading memory)"
    )
    print(f"balance point: {gemm_flops_per_s / bandwidth:.1f} FLOPs per byte read")

    sample = np.arange(model.config.n_ctx) % model.config.vocab_size
    print(f"\n{about_model}, one sequence:")
    print(f"{'T':>5} {'time (ms)':>10} {'FLOPs (Kaplan)':>15} {'GFLOP/s':>8}")
    measured = []
    for T in (16, 64, 256):
        seconds = best_time(lambda T=T: model.forward(sample[:T]), repeats=2)
        flops = T * kaplan_flops(model.config, T)
        measured.append((T, seconds, flops))
        print(f"{T:5} {seconds * 1e3:10.2f} {flops:15,} {flops / seconds / 1e9:8.1f}")

# %% [markdown]
# Compare the rates with the matrix-product rate above. A forward pass is mostly matrix products,
# each weight matrix multiplied by a $(T, d)$ block of tokens at once, but not only: between them
# `lib` runs many small operations (norms, softmax, GELU, reshapes, Python itself) that do few FLOPs
# and still take time, and a thin block of a few tokens uses the processor less well than a square
# matrix does.

# %% [markdown]
# ## The KV cache
#
# Generation adds one token at a time, and the new token attends to the keys and values of every
# earlier token, in every layer. They do not change (a token's key depends only on the tokens up
# to it), so instead of recomputing them, a decoder keeps them: the **KV cache**. For each token it
# stores one key and one value vector per key/value head per layer, so one sequence of $T$ tokens
# needs, with $b$ bytes per number,
#
# $$2 \cdot n_\text{layer} \cdot h_{kv} \cdot d_\text{head} \cdot T \cdot b$$
#
# bytes. **Grouped-query attention** {cite}`ainslie2023gqa` lets several query heads share one
# key/value head, which divides this by $h / h_{kv}$ and barely changes the model's quality.


# %% nbgrader={"grade": false, "grade_id": "kv_cache_bytes-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def kv_cache_bytes(config, T, dtype):
    """Bytes of the KV cache of one sequence of T tokens.

    Task: keys and values, for every layer, every key/value head, every token, each a vector of
        d_head numbers of the given dtype.
    Shapes: config, a lib.Config; T, an int; dtype, a NumPy dtype such as np.dtype("float16")
        -> an int (bytes)
    Example: for the toy at T = 3 in float32: 2 * 1 * 2 * 2 * 3 * 4 == 96 bytes.
    Hints: np.dtype(dtype).itemsize is the number of BYTES of one number. Keys and values have
        config.n_kv_head heads, which is fewer than config.n_head under grouped-query attention.
    """
    ### BEGIN SOLUTION
    return 2 * config.n_layer * config.n_kv_head * config.d_head * T * np.dtype(dtype).itemsize
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "kv_cache_bytes", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("06-cost/kv_cache_bytes", kv_cache_bytes)

# %% [markdown]
# `lib`'s cache (`model.new_cache()`, chapter 4) reports the bytes it holds. Fill it with a prompt
# and the count matches the formula, token by token:


# %%
def kv_bytes(config, T, dtype):
    """The formula above, for the tables below."""
    return 2 * config.n_layer * config.n_kv_head * config.d_head * T * np.dtype(dtype).itemsize


prompt = np.arange(50) % model.config.vocab_size
cache = model.new_cache()
model.forward(prompt[:30], cache=cache)
print(
    f"after 30 tokens: cache.nbytes() = {cache.nbytes():,}, formula = {kv_bytes(model.config, 30, model.dtype):,}"
)
model.forward(prompt[30:], cache=cache)
print(
    f"after 50 tokens: cache.nbytes() = {cache.nbytes():,}, formula = {kv_bytes(model.config, 50, model.dtype):,}"
)

# %% [markdown]
# For real models the cache competes with the weights for memory. Below, a 16-bit cache (2 bytes
# per number) per token and for one full-context sequence, next to the 16-bit weights. The last
# two rows are the same configuration, with a key/value head for every query head and with
# grouped-query attention (the rows name their layers and heads):

# %%
LLAMA_70B_GQA = lib.Config.llama(
    vocab_size=32000, n_ctx=4096, d_model=8192, n_layer=80, n_head=64, n_kv_head=8, d_ff=28672
)
f16 = np.dtype("float16")
rows = [
    ("GPT-2 117M", published[0][2]),
    ("LLaMA 6.7B", published[4][2]),
    *[
        (f"{c.n_layer} layers, {c.n_kv_head} KV heads", c)
        for c in (LLAMA_70B_GQA.replace(n_kv_head=LLAMA_70B_GQA.n_head), LLAMA_70B_GQA)
    ],
]
print(f"{'model':24} {'n_ctx':>6} {'KV per token':>13} {'KV at n_ctx':>12} {'weights':>10}")
for name, c in rows:
    per_token = kv_bytes(c, 1, f16)
    print(
        f"{name:24} {c.n_ctx:6} {per_token / 2**10:10.0f} KiB {kv_bytes(c, c.n_ctx, f16) / 2**30:8.2f} GiB {n_params(c) * 2 / 2**30:6.1f} GiB"
    )

# %% [markdown]
# **Concept check.** A model with 32 query heads goes from 32 key/value heads to 8, everything else
# unchanged. Which statement is right?
#
# - (a) The KV cache and the arithmetic of attention both shrink 4 times.
# - (b) The KV cache shrinks 4 times; every query head still takes a dot product with every cached
#   key, so attention's arithmetic stays the same.
# - (c) Nothing shrinks, since the queries still have 32 heads.
# - (d) The KV cache shrinks 8 times.

# %% nbgrader={"grade": false, "grade_id": "q_gqa-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_gqa = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_gqa = "b"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_gqa", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("06-cost/q_gqa", answer_q_gqa)

# %% [markdown]
# ## Prefill and decoding: arithmetic or memory?
#
# **Concept check.** Before the numbers, a prediction. A single user chats with a 7B model on a
# GPU. While it generates each token (batch 1, with a KV cache), which resource limits the speed?
#
# - (a) memory bandwidth: every weight, and the cache, must be read for every token
# - (b) arithmetic: each token needs about 14 GFLOPs
# - (c) the softmax over the vocabulary
# - (d) the number of layers, which must run one after the other

# %% nbgrader={"grade": false, "grade_id": "q_decode-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_decode = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_decode = "a"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_decode", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("06-cost/q_decode", answer_q_decode)

# %% [markdown]
# Generating text has two phases {cite}`pope2022efficiently`. **Prefill** runs the whole prompt of
# $T$ tokens through the model in one pass, filling the cache. **Decoding** then runs one token at
# a time. Both read every weight from memory once per pass, but they do very different amounts of
# arithmetic with it. The ratio is the **arithmetic intensity**, FLOPs per byte read; with 4-byte
# weights and the $2N$ rule, in FLOPs per byte:
#
# $$\begin{aligned}
# \text{prefill: } & \frac{2N \cdot T}{4N} = \frac{T}{2}, \\
# \text{decoding: } & \frac{2N}{4N} = \frac12
# \end{aligned}$$
#
# (decoding also reads the cache, which lowers its intensity further). A machine does at most
# $F$ FLOPs per second and reads at most $B$ bytes per second, so a computation of intensity $I$
# runs at most at $\min(F, B \cdot I)$ FLOPs per second: the **roofline**. Below the balance point
# $F / B$ memory sets the pace; above it, arithmetic does. Decoding sits far below it.
#
# To see this with `lib`, the Shakespeare model is too small: its weights fit in the processor's
# caches, so "reading memory" is not what it does. The cell below builds a model with GPT-2 small's
# width and a few blocks (random weights: only the time matters), whose float32 weights far exceed
# those caches (its first line gives their size), then times prefill at a few prompt lengths and
# single-token decoding steps with the cache.

# %%
if not GRADING:
    wide = lib.Config.gpt2(vocab_size=model.config.vocab_size, n_ctx=512, d_model=768, n_layer=4, n_head=12)
    big_model = lib.Model(wide, lib.init_params(wide, seed=0))
    engine = lib.Engine(big_model)  # the fast path generation runs on (lib/engine.py)
    weight_bytes = big_model.num_params() * 4
    print(f"{big_model}: {weight_bytes / 1e6:.0f} MB of weights")
    sample = np.arange(wide.n_ctx) % wide.vocab_size
    points = []  # (label, intensity, GFLOP/s)
    for T in (4, 16, 64, 128):
        seconds = best_time(lambda T=T: engine.forward(sample[:T]), repeats=2)
        flops = T * kaplan_flops(wide, T)
        points.append((f"prefill T={T}", flops / weight_bytes, flops / seconds))
        print(
            f"prefill T = {T:3}: {seconds * 1e3:7.1f} ms, {flops / seconds / 1e9:6.1f} GFLOP/s, intensity {flops / weight_bytes:6.1f} FLOP/byte"
        )

    cache = big_model.new_cache()
    big_model.forward(sample[:128], cache=cache)
    step_times = []
    for t in range(128, 134):  # one new token per call, reading the cache of the earlier ones
        start = time.perf_counter()
        engine.decode(sample[t], cache)
        step_times.append(time.perf_counter() - start)
    seconds = min(step_times)
    flops = kaplan_flops(wide, 128)
    read = weight_bytes + kv_bytes(wide, 128, np.float32)
    points.append(("decode", flops / read, flops / seconds))
    print(
        f"decode one token: {seconds * 1e3:7.1f} ms, {flops / seconds / 1e9:6.1f} GFLOP/s, intensity {flops / read:6.2f} FLOP/byte"
    )
    print(
        f"reading the weights and cache once at the measured {bandwidth / 1e9:.1f} GB/s takes {read / bandwidth * 1e3:.1f} ms"
    )

# %% tags=["hide-input"] mystnb={"image": {"alt": "Roofline plot on log axes: attainable GFLOP/s against arithmetic intensity, a sloped line for memory bandwidth meeting a flat line for the matrix-product rate, both measured on the machine that ran the page; the measured point of lib's decoding step sits far left, low on the sloped part, and prefill points at growing prompt lengths move right and up towards the flat part. A legend names each point."}}
if not GRADING:
    intensity = np.logspace(-1.5, 3, 200)
    fig, ax = plt.subplots(figsize=(5.5, 4.4))
    ax.loglog(
        intensity, np.minimum(gemm_flops_per_s, bandwidth * intensity) / 1e9, color="0.3", label="roofline"
    )
    ax.axvline(gemm_flops_per_s / bandwidth, color="0.6", ls=":", lw=1, label="balance point")
    markers = iter("os^Dv")
    for label, x_, y_ in points:  # a legend entry per point: labels next to the points would overlap
        colour = "tab:red" if label == "decode" else "tab:blue"
        ax.scatter(x_, y_ / 1e9, color=colour, marker=next(markers), zorder=3, label=label)
    ax.set_xlabel("FLOPs per byte of weights read")
    ax.set_ylabel("GFLOP/s")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=9)
    ax.set_title("lib's prefill and decoding on the roofline")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# The decoding step does the same matrix products as prefill, on one row instead of $T$, so it
# reads the same weights to do a $T$-th of the work; its rate is set by how fast memory can be
# read, and it cannot get better by computing faster. This is why serving systems **batch**
# requests: decoding $B$ sequences together reads the weights once for $B$ tokens and multiplies
# the intensity by $B$, until the growing KV caches, which are read per sequence, take over.
# (Our measured points sit below the roof: `lib` is NumPy plus Python, with many small operations
# between the matrix products.)

# %% [markdown]
# ## Summary
#
# - Weights: $V d$ of embeddings (plus $n_\text{ctx} d$ for learned positions, plus $V d$ for an
#   untied head) and, per block, two norms, attention $d (h + 2h_{kv}) d_\text{head} + d^2$ and the
#   MLP ($2 d\, d_\text{ff}$ for GELU, $3 d\, d_\text{ff}$ for SwiGLU), with biases in the GPT-2
#   family. GPT-2's block is $12d^2 + 13d$.
# - A forward pass costs about $2N + 2\, n_\text{layer} T d$ FLOPs per token: two per non-embedding
#   weight, plus attention's dot products, which matter only when $T$ is comparable to $12d$.
# - The KV cache takes $2\, n_\text{layer}\, h_{kv}\, d_\text{head}$ numbers per token; grouped-query
#   attention divides it by $h / h_{kv}$.
# - Prefill has an arithmetic intensity of about $T/2$ FLOPs per byte of 4-byte weights and is
#   limited by arithmetic; decoding one token has about $1/2$ and is limited by memory traffic.
