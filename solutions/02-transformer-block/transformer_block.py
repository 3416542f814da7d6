# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The transformer block
#
# :::{admonition} In this chapter
# :class: note
# - **You will be able to** write every part of a GPT-2 block (LayerNorm, causal multi-head
#   attention, the GELU MLP, the residual connections) and the parts modern models swap in
#   (RMSNorm, rotary positions, SwiGLU), and predict what breaks when one of them is removed.
# - **It assumes** chapter 1, matrix products and the softmax (which chapter 3 studies in detail;
#   here `lib.softmax` is enough).
# - **Time:** about 3 hours: an hour of reading, two hours for twelve exercises and three
#   questions. It is the longest chapter; its sections can be done in more than one sitting.
# :::
#
# After chapter 1, a text of $T$ tokens is an array $X$ of shape $(T, d)$: row $t$ says "token
# $i_t$, at position $t$", and nothing else; no row knows anything about its neighbours. The
# next-token prediction at position $t$ needs much more: which words came before,
# who is speaking, whether a quotation is open. A stack of **transformer blocks** supplies it.
#
# A block is a function from $(T, d)$ to $(T, d)$. Because it keeps the shape, the same design can
# be applied again and again, $L$ times, each time with its own weights:
#
# $$\begin{aligned}
# X^{(0)} &= \text{embed}(\text{ids}), \\
# X^{(\ell+1)} &= \text{block}_\ell\big(X^{(\ell)}\big), \\
# \ell &= 0, \dots, L-1.
# \end{aligned}$$
#
# Inside, a block has two **sublayers**. *Attention* is the one place where positions exchange
# information: row $t$ gathers from rows $0, \dots, t$. The *MLP* then works on every row on its
# own. Each sublayer is preceded by a normalisation and its result is *added* to its input.
#
# You will write every piece of a GPT-2 block {cite}`radford2019language`: LayerNorm, the scaled and
# causally masked attention scores, single-head and multi-head attention, GELU and the MLP, and the
# block itself. Then the pieces that modern models such as Llama {cite}`touvron2023llama` swap in:
# RMSNorm, rotary position embeddings and SwiGLU. Along the way you will look inside the course's
# Shakespeare model, break it on purpose, and see why training can process every position of a
# text at once.
#
# :::{admonition} How the checks work
# :class: tip
# - Each exercise is a function whose body is `raise NotImplementedError()`. Replace that line with
#   your code, run the cell, then run the check cell right below it. It prints ✔, or a short
#   message that names the mistake it recognises (epsilon outside the square root, a mask applied
#   after the softmax, heads merged in the wrong order, ...). For a function built from smaller
#   ones, the message names the first intermediate result that differs from the reference, and
#   which of your helpers computed it.
# <!-- class only -->
# - When you submit, the grader runs the same functions on inputs you do not see: batches, other
#   sizes and numbers of heads, float32 and float64. A function that only reproduces the visible
#   example fails there.
# - Concept checks are answered by setting a variable to a letter; the check cell only records the
#   answer, which is graded when you submit.
# - Before you submit, restart the kernel and run every cell, then run `nbgrader validate
#   transformer_block.ipynb` in a terminal in this folder (or the **Validate** button of
#   JupyterLab's assignment list).
# <!-- end class only -->
# <!-- reader only -->
# - Reading on your own, you submit nothing: the check is all the feedback there is, and it comes
#   at once, as often as you run it. Its cases are of every kind a course's grader uses, so a ✔
#   means a function that is right in general, not one fitted to the example.
# - In the web book, a check's place shows what a correct function returns on its example, with
#   the solution folded under "Show solution"; a concept check's answer and its reason are folded
#   under "Show the answer". Try first, then unfold. In a notebook, a concept check's cell says at
#   once whether your letter is right, and why.
# <!-- end reader only -->
# :::

# %%
import math
import os

import numpy as np

import lib
from grader.check import check

GRADING = "NBGRADER_EXECUTION" in os.environ  # the autograder skips figures and widgets
rng = np.random.default_rng(0)
np.set_printoptions(precision=3, suppress=True, linewidth=90)
if not GRADING:  # presentation only: grading neither needs it nor sees it
    import matplotlib.pyplot as plt

    import bookkit

    bookkit.style.use()  # figures as SVG, sized to read on a phone

model = lib.load_pretrained("shakespeare")
config = model.config
model


# %%
def label(ch):
    """A printable name for a character: newline and space would be invisible in a figure."""
    return {"\n": "↵", " ": "␣"}.get(ch, ch)


# One line of held-out Shakespeare (text the model never trained on) for the figures.
heldout = (lib.checkpoint.resolve("shakespeare") / "heldout.txt").read_text(encoding="utf-8")
line = heldout.splitlines()[0]
print(repr(line))

# %% [markdown]
# ## The residual stream
#
# Read a block as a sequence of edits to one shared array, the **residual stream**
# {cite}`elhage2021mathematical`. Every sublayer *reads* the stream (through a normalisation),
# computes something, and *adds* its result back:
#
# $$\begin{aligned}
# X &\leftarrow X + \operatorname{Attn}\big(\operatorname{LN}_1(X)\big) \\
# X &\leftarrow X + \operatorname{MLP}\big(\operatorname{LN}_2(X)\big)
# \end{aligned}$$
#
# Nothing ever overwrites the stream; the embedding written at the start is still in there at the
# end, plus one contribution per sublayer. That has three consequences you will meet in this
# chapter. The shape never changes, so blocks stack. Each sublayer only has to learn a *change*,
# so a freshly initialised block, which adds almost nothing, barely disturbs the signal. And later
# sublayers can read what any earlier one wrote, because everything lives in the same $d$-wide
# space.
#
# `lib`'s trace shows the stream at every stage of the shipped model. Here are the shapes along
# the way for our line of text: every entry of the stream, and every sublayer's output, is $(T, d)$.

# %%
ids = model.tokenizer.encode(line)
logits, trace = model.forward(ids, trace=True)
stream_names = ["embed.out"] + [
    f"h.{i}.{name}"
    for i in range(config.n_layer)
    for name in ("attn.out", "resid_mid", "mlp.out", "resid_post")
]
for name in stream_names[:5] + ["...", stream_names[-1]]:
    print(f"{name:>16}", trace[name].shape if name in trace else "")
print(f"T = {len(ids)} tokens, d = {config.d_model}, L = {config.n_layer} blocks")

# %% [markdown]
# ## LayerNorm
#
# Each sublayer reads a *normalised* copy of the stream. LayerNorm {cite}`ba2016layer` takes one
# token's vector $x \in \mathbb{R}^d$ at a time, removes its mean, divides by its standard
# deviation, then applies a learned gain $g$ and bias $b$ (both of shape $(d,)$):
#
# $$\begin{aligned}
# \mu &= \frac1d \sum_{j=1}^d x_j, \\
# \sigma^2 &= \frac1d \sum_{j=1}^d (x_j - \mu)^2, \\
# \operatorname{LN}(x) &= \frac{x - \mu}{\sqrt{\sigma^2 + \varepsilon}} \odot g + b.
# \end{aligned}$$
#
# Three details matter, and each is a classic bug. The statistics are taken over the **features**
# of one token (the last axis), never across tokens. The variance is the *biased* one, dividing
# by $d$ (not $d - 1$). And $\varepsilon$, a small constant such as $10^{-5}$, sits **inside** the
# square root: it keeps the division safe when a row is nearly constant, and every GPT-2 and Llama
# checkpoint was trained with it there.


# %% nbgrader={"grade": false, "grade_id": "layer_norm-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layer_norm(x, g, b, eps=1e-5):
    """Normalise each token's vector, then scale and shift it.

    Task: over the LAST axis of x, subtract the mean and divide by sqrt(variance + eps); then
        multiply by the gain g and add the bias b. Use the biased variance (divide by d).
    Shapes: x (..., d); g (d,); b (d,) -> (..., d), same dtype as x
    Example: layer_norm(np.array([[1., 2., 3.]]), np.ones(3), np.zeros(3))
        -> array([[-1.2247, 0., 1.2247]])   (mean 2, variance 2/3)
    Hints: x.mean(axis=-1, keepdims=True) keeps a length-1 axis so the result broadcasts against
        x; x.var(...) takes the same arguments and is biased by default (ddof=0).
    """
    ### BEGIN SOLUTION
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    var = x.var(axis=-1, keepdims=True)  # [..., 1], biased
    return (x - mean) / np.sqrt(var + eps) * g + b
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "layer_norm", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/layer_norm", layer_norm)

# %% [markdown]
# What does LayerNorm do to the real stream? Below, on the left, every number of the stream as it
# enters the last block of the shipped model (all positions, all features); in the middle, the same
# numbers after normalisation alone (gain 1, bias 0); on the right, after the learned gain and bias,
# which is what the attention sublayer actually reads. The printed statistics are per token,
# averaged over the line.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Three histograms, one above the other: the values of the residual stream entering the last block of the Shakespeare model, the same values normalised per token to mean 0 and variance 1, and the normalised values after the learned gain and bias."}}
if not GRADING:
    last = config.n_layer - 1
    stream = trace[f"h.{last - 1}.resid_post"] if last > 0 else trace["embed.out"]  # (T, d)
    ln_params = model.params["h"][last]["ln_1"]
    d = config.d_model
    normalised = lib.layer_norm(stream, np.ones(d, stream.dtype), np.zeros(d, stream.dtype))
    after = trace[f"h.{last}.ln_1"]
    panels = [
        ("stream entering the last block", stream),
        ("normalised (gain 1, bias 0)", normalised),
        ("after gain and bias: ln_1", after),
    ]
    fig, axes = plt.subplots(3, 1, figsize=(5.5, 5.6))
    for ax, (title, values) in zip(axes, panels, strict=True):
        ax.hist(values.ravel(), bins=80, color="tab:blue")
        ax.set_title(title)
        ax.set_ylabel("count")
    axes[-1].set_xlabel("value")
    fig.tight_layout()
    plt.show()
    for title, values in panels:
        print(f"{title:>32}: mean {values.mean(-1).mean():+.3f}, std {values.std(-1).mean():.3f} (per token)")

# %% [markdown]
# ### Pre-norm, not post-norm
#
# The original transformer {cite}`vaswani2017attention` normalised *after* adding:
# $X \leftarrow \operatorname{LN}(X + \operatorname{Attn}(X))$, so the stream itself was normalised
# after every sublayer. GPT-2 moved the norm to the sublayer's *input*,
# $X \leftarrow X + \operatorname{Attn}(\operatorname{LN}(X))$, and added one final LayerNorm
# before the output layer. With this **pre-norm** layout the stream is a plain sum that no norm
# ever rescales: a path runs from the embedding to the output through nothing but additions, which
# makes deep stacks much easier to train. Every model in this course is pre-norm.
#
# ## Attention with one head
#
# Attention lets row $t$ of the stream collect information from rows $0, \dots, t$. From the
# normalised stream $X$ (shape $(T, d)$), three linear maps make three arrays:
#
# $$Q = X W_Q, \quad K = X W_K, \quad V = X W_V,$$
#
# each of shape $T \times d_\text{head}$.
#
# Row $t$ of $Q$ is a **query**, what position $t$ is looking for; row $s$ of $K$ is a **key**, what
# position $s$ offers; row $s$ of $V$ is the **value**, what position $s$ hands over when it is
# chosen. The match between query $t$ and key $s$ is a dot product, and all of them together form
# the $T \times T$ matrix of **scores**:
#
# $$S = \frac{Q K^\top}{\sqrt{d_\text{head}}}, \qquad S_{ts} = \frac{q_t \cdot k_s}{\sqrt{d_\text{head}}}.$$
#
# ### Why divide by $\sqrt{d_\text{head}}$
#
# If the entries of $q$ and $k$ are roughly independent with mean 0 and variance 1, their dot
# product is a sum of $d_\text{head}$ such products, so its variance is $d_\text{head}$ and its
# typical size $\sqrt{d_\text{head}}$. The scores feed a softmax, and a softmax of large numbers is
# nearly one-hot: almost all the weight goes to the single largest score, and the gradient that
# would teach the model to look elsewhere all but vanishes. Dividing by $\sqrt{d_\text{head}}$
# {cite}`vaswani2017attention` brings the scores back to a spread of about 1 whatever the head size.
# The experiment below draws random queries and keys and measures how much weight the softmax puts
# on its favourite key, over 64 keys:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Line plot against the head size d_head on a logarithmic axis from 2 to 1024: without scaling, the weight on the largest key climbs towards 1 as d_head grows; with the 1/sqrt(d_head) scale it stays flat and low."}}
if not GRADING:
    sizes = 2 ** np.arange(1, 11)
    n_keys, trials = 64, 200
    top_raw, top_scaled, spread = [], [], []
    for d_head in sizes:
        q = rng.standard_normal((trials, 1, d_head))
        k = rng.standard_normal((trials, n_keys, d_head))
        raw = lib.attention_scores(q, k)  # [trials, 1, n_keys]
        spread.append(raw.std())
        top_raw.append(lib.softmax(raw, axis=-1).max(-1).mean())
        top_scaled.append(lib.softmax(raw / math.sqrt(d_head), axis=-1).max(-1).mean())
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(sizes, top_raw, "o-", label=r"$q\cdot k$ (no scale)")
    ax.plot(sizes, top_scaled, "s-", label=r"$q\cdot k/\sqrt{d_\mathrm{head}}$")
    ax.axhline(1 / n_keys, color="gray", lw=0.8, ls=":", label="uniform (1/64)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(r"$d_\mathrm{head}$")
    ax.set_ylabel("mean weight on the top key")
    ax.set_ylim(0, 1.05)
    ax.legend()
    fig.tight_layout()
    plt.show()
    for d_head, s in zip(sizes[::3], spread[::3], strict=True):
        print(f"d_head = {d_head:4d}: std of raw scores {s:6.2f}, sqrt(d_head) = {math.sqrt(d_head):6.2f}")

# %% [markdown]
# **Concept check.** A head with $d_\text{head} = 64$ divides its scores by $\sqrt{64} = 8$.
# Someone widens it to $d_\text{head} = 256$ and forgets to change the divisor, which stays 8.
# With queries and keys whose entries are independent with variance 1, how do its attention
# weights compare with those of a correctly scaled head of width 256?
#
# - (a) They are the same: the softmax only cares about which key has the largest score.
# - (b) They are flatter, closer to uniform over the keys.
# - (c) They no longer sum to one.
# - (d) They are sharper: the scores spread twice as wide, so more of the weight goes to the top
#   key.

# %% nbgrader={"grade": false, "grade_id": "q_scale-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_scale = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_scale = "d"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_scale", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/q_scale", answer_q_scale)

# %% [markdown]
# ### The causal mask
#
# A language model predicts token $t+1$ from tokens $0, \dots, t$, so position $t$ must not read
# any later position: query $t$ may only match keys $s \le t$. The **causal mask** enforces this
# by setting every score above the diagonal to $-\infty$:
#
# $$\tilde S_{ts} = \begin{cases} S_{ts} & s \le t \\ -\infty & s > t \end{cases}$$
#
# The mask goes on the scores, *before* the softmax, because $e^{-\infty} = 0$: a masked key then
# gets exactly zero weight, and the remaining weights still sum to one. Note the diagonal: a token
# always sees itself ($s = t$ is allowed), which also guarantees that no row is masked entirely.


# %% nbgrader={"grade": false, "grade_id": "masked_scores-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def masked_scores(q, k):
    """Scaled attention scores with the causal mask applied.

    Task: compute q @ k^T / sqrt(d_head), then set every entry above the diagonal (key s later
        than query t) to -inf. The diagonal itself stays.
    Shapes: q (..., T, d_head); k (..., T, d_head) -> (..., T, T), same dtype as q
    Example: for T = 3 the result looks like
        [[s00, -inf, -inf],
         [s10,  s11, -inf],
         [s20,  s21,  s22]]
    Hints: k.swapaxes(-1, -2) transposes the last two axes of any number of leading ones.
        np.tril(np.ones((T, T), dtype=bool)) is True where attention is allowed;
        np.where(mask, scores, -np.inf) fills the rest. Use math.sqrt (a plain float) for the
        scale: np.sqrt of an int returns a float64 scalar that turns float32 arrays into float64.
    """
    ### BEGIN SOLUTION
    T, d_head = q.shape[-2], q.shape[-1]
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(d_head)  # [..., T, T]
    allowed = np.tril(np.ones((T, T), dtype=bool))  # True on and below the diagonal
    return np.where(allowed, scores, -np.inf)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "masked_scores", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/masked_scores", masked_scores)

# %% [markdown]
# ### Softmax over keys, then a weighted sum of values
#
# Each row of masked scores becomes a probability distribution over the keys, and the output of
# position $t$ is the average of the values under that distribution:
#
# $$\begin{aligned}
# A &= \operatorname{softmax}_\text{rows}(\tilde S), \\
# A_{ts} &= \frac{e^{\tilde S_{ts}}}{\sum_{s'} e^{\tilde S_{ts'}}}, \\
# \text{out} &= A V \qquad (T \times d_\text{head}).
# \end{aligned}$$
#
# The softmax runs along each **row** (over keys $s$, the last axis): query $t$ distributes one
# unit of attention among the positions it may see. Row $t$ of the output is a mixture of the
# value vectors of positions $0, \dots, t$: this is how information moves between positions.


# %% nbgrader={"grade": false, "grade_id": "attention-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def attention(q, k, v):
    """Causal scaled dot-product attention for one head (or many, along leading axes).

    Task: turn your masked_scores into weights with a softmax over the keys, then return the
        weighted sum of the values.
    Shapes: q, k, v (..., T, d_head) -> (..., T, d_head)
    Example: the first output row equals v[..., 0, :] exactly, since query 0 can only see key 0.
    Hints: lib.softmax(x, axis=-1) is a numerically stable softmax (exp(-inf) gives weight 0).
        Then a matrix product with v.
    """
    ### BEGIN SOLUTION
    weights = lib.softmax(masked_scores(q, k), axis=-1)  # [..., T, T], rows sum to 1
    return weights @ v  # [..., T, d_head]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "attention", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/attention", attention, masked_scores=masked_scores)

# %% [markdown]
# ## Many heads
#
# One head computes one pattern of weights per query. But a position may need several things at
# once: the previous character, the start of the current word, the speaker's name three lines up.
# **Multi-head attention** {cite}`vaswani2017attention` runs $h$ heads side by side, each in its own
# $d_\text{head} = d / h$ dimensional slice, so the total cost stays that of one head of width $d$:
#
# 1. **Project** the normalised stream to queries, keys and values of width $d$ each. GPT-2 does
#    this with one fused matrix: `c_attn` has weight $(d, 3d)$ and bias $(3d,)$, and
#    $Q$, $K$, $V$ are the three $d$-wide column blocks of $X W + b$, in that order.
# 2. **Split** each of $Q, K, V$ into heads: features $0..d_\text{head}-1$ go to head 0, the next
#    $d_\text{head}$ to head 1, and so on. Shapes: $(T, d) \to (h, T, d_\text{head})$, with the head
#    axis *before* $T$ so that attention runs per head over the last two axes.
# 3. **Attend** in every head at once: your `attention` already works on leading axes.
# 4. **Merge**: put the heads' outputs side by side again, head 0's features first:
#    $(h, T, d_\text{head}) \to (T, d)$.
# 5. **Project** with `c_proj` (weight $(d, d)$, bias $(d,)$). This output projection is what mixes
#    the heads: each output feature reads from every head.
#
# $$\begin{aligned}
# \operatorname{MHA}(X) &= H\, W_O + b_O, \\
# H &= \big[\operatorname{head}_0 \,\|\, \cdots \,\|\, \operatorname{head}_{h-1}\big].
# \end{aligned}$$
#
# The split and the merge are the step where most implementations go wrong. A plain
# `reshape(n_head, T, d_head)` runs without error but cuts the array in memory order, handing
# whole tokens to each "head"; the correct split first reshapes $(T, d)$ to $(T, h, d_\text{head})$
# (which only reinterprets each row) and then swaps the $T$ and $h$ axes.


# %% nbgrader={"grade": false, "grade_id": "split_heads-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def split_heads(x, n_head):
    """Cut the feature axis into n_head slices and move the head axis in front of T.

    Task: head j gets features j*d_head .. (j+1)*d_head - 1 of every token, d_head = d // n_head.
    Shapes: x (..., T, d) -> (..., n_head, T, d_head)
    Example: x of shape (5, 8), n_head = 2 -> shape (2, 5, 4); out[1, t] == x[t, 4:8]
    Hints: x.reshape(*x.shape[:-1], n_head, d_head) gives (..., T, n_head, d_head); then
        .swapaxes(-2, -3) swaps T and the head axis.
    """
    ### BEGIN SOLUTION
    *lead, T, d = x.shape
    return x.reshape(*lead, T, n_head, d // n_head).swapaxes(-2, -3)  # [..., H, T, d_head]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "split_heads", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/split_heads", split_heads)


# %% nbgrader={"grade": false, "grade_id": "merge_heads-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def merge_heads(x):
    """Undo split_heads: put the heads' features side by side, head 0's first.

    Task: the inverse of split_heads, so merge_heads(split_heads(x, n_head)) == x.
    Shapes: x (..., n_head, T, d_head) -> (..., T, n_head * d_head)
    Example: x of shape (2, 5, 4) -> shape (5, 8); out[t, 4:8] == x[1, t]
    Hints: swap the head and T axes back first, then reshape the last two axes into one.
    """
    ### BEGIN SOLUTION
    *lead, H, T, d_head = x.shape
    return x.swapaxes(-2, -3).reshape(*lead, T, H * d_head)  # [..., T, d]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "merge_heads", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/merge_heads", merge_heads)


# %% nbgrader={"grade": false, "grade_id": "multi_head_attention-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def multi_head_attention(x, params, n_head):
    """Causal multi-head self-attention in GPT-2's layout.

    Task: project x with params["c_attn"] and cut the result into q, k, v (three d-wide column
        blocks, in that order); split each into heads; attend; merge the heads; project with
        params["c_proj"]. Use your split_heads, attention and merge_heads.
    Shapes: x (..., T, d); params = {"c_attn": {"w": (d, 3d), "b": (3d,)},
        "c_proj": {"w": (d, d), "b": (d,)}} -> (..., T, d)
    Example: x of shape (5, 8), n_head = 2: q, k, v (5, 8) each -> heads (2, 5, 4) each
        -> attention output (2, 5, 4) -> merged (5, 8) -> output (5, 8)
    Hints: np.split(qkv, 3, axis=-1) cuts the last axis into three equal blocks.
    """
    ### BEGIN SOLUTION
    c_attn, c_proj = params["c_attn"], params["c_proj"]
    qkv = x @ c_attn["w"] + c_attn["b"]  # [..., T, 3d]
    q, k, v = np.split(qkv, 3, axis=-1)  # [..., T, d] each
    heads = attention(split_heads(q, n_head), split_heads(k, n_head), split_heads(v, n_head))
    return merge_heads(heads) @ c_proj["w"] + c_proj["b"]  # [..., T, d]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "multi_head_attention", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check(
    "02-transformer-block/multi_head_attention",
    multi_head_attention,
    split_heads=split_heads,
    attention=attention,
    merge_heads=merge_heads,
)

# %% [markdown]
# The check above names its intermediate results as `lib`'s trace does: `attn.q` (queries split
# into heads), `attn.probs` (the attention weights), `attn.heads`, `attn.merged` and `attn.out`.
# In the full model each name carries the block's prefix, `h.0.attn.probs` for block 0.
#
# ### What the shipped model's heads look at
#
# Each head of each layer of the Shakespeare model has its own attention weights
# `h.{i}.attn.probs` on our held-out line. Row $t$ of a head's matrix is query $t$'s distribution
# over the keys; the upper triangle is zero because of the mask. Some heads put their weight just
# below the diagonal (the previous character), some on the diagonal (the character itself), some in
# vertical stripes: a few key characters, often spaces or capitals, that many later queries read.
# The table gives every head's average weight on the character itself and on the one before it;
# the figure draws the head that looks most at the previous character, on the first characters of
# the line.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Heatmap of the attention weights of the head of the Shakespeare model that looks most at the previous character, on the first 24 characters of a held-out line: query characters down, key characters across, each labelled with its character; the weight sits mostly just below the diagonal; a colour bar gives the scale from 0 to 1."}}
if not GRADING:
    L, H = config.n_layer, config.n_head
    print("mean weight on (itself, previous character), per head:")
    for i in range(L):
        probs = trace[f"h.{i}.attn.probs"]  # [H, T, T]
        cells = [
            f"({np.diagonal(probs[j]).mean():.2f}, {np.diagonal(probs[j], -1).mean():.2f})" for j in range(H)
        ]
        print(f"  layer {i}: " + "  ".join(cells))
    previous = np.array(
        [[np.diagonal(trace[f"h.{i}.attn.probs"][j], -1).mean() for j in range(H)] for i in range(L)]
    )
    i, j = np.unravel_index(previous.argmax(), previous.shape)
    n = 24
    chars = [label(c) for c in line[:n]]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    image = ax.imshow(trace[f"h.{i}.attn.probs"][j, :n, :n], cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(n), chars)
    ax.set_yticks(range(n), chars)
    ax.set_xlabel("key: the character read")
    ax.set_ylabel("query: the character reading")
    ax.set_title(f"layer {i}, head {j}: the previous-character head")
    fig.colorbar(image, ax=ax, fraction=0.046, label="attention weight")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# Every head of every layer is in the figure below: pick a layer, a head and a query character.
# The matrix is that head's weights on the whole line, with the query's row outlined, and the bars
# are that row: how the query shares its attention among the characters it may read. In a notebook
# the row is recomputed with your `masked_scores` (and `lib.softmax`) from the model's own queries
# and keys once your function works, and the title says so; on the web page every choice was
# computed with `lib` when the book was built.


# %% tags=["hide-input"]
def attention_row(layer, head, query):
    """Query `query`'s weights in one head: with the reader's masked_scores, or lib's trace."""
    q, k = trace[f"h.{layer}.attn.q"][head], trace[f"h.{layer}.attn.k"][head]  # [T, d_head]
    try:
        row = lib.softmax(np.asarray(masked_scores(q, k)), axis=-1)[query]
        return row, "your masked_scores + lib.softmax"
    except NotImplementedError:
        source = "lib's trace (your masked_scores is not written yet)"
    except Exception as err:  # a bug in the reader's function should not break the figure
        source = f"lib's trace (your masked_scores raised {type(err).__name__})"
    return trace[f"h.{layer}.attn.probs"][head, query], source


def row_title(layer, head, query):
    return f"layer {layer}, head {head}, query {query}: {label(line[query])}, reading the characters up to it"


def show_row(layer, head, query):
    row, source = attention_row(layer, head, query)
    chars = [label(c) for c in line]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 9), gridspec_kw={"height_ratios": [3, 1]})
    image = top.imshow(trace[f"h.{layer}.attn.probs"][head], cmap="viridis", vmin=0, vmax=1)
    top.axhline(query, color="tab:orange", lw=1)
    top.set_xticks(range(len(line)), chars, fontsize=7)
    top.set_yticks(range(len(line)), chars, fontsize=7)
    top.set_xlabel("key")
    top.set_ylabel("query")
    fig.colorbar(image, ax=top, fraction=0.046, label="attention weight")
    bottom.bar(np.arange(len(line)), row, color="tab:blue")
    bottom.bar([query], [row[query]], color="tab:orange")
    bottom.set_xticks(np.arange(len(line)), chars, fontsize=7)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("weight")
    top.set_title(f"{row_title(layer, head, query)}\n[{source}]", fontsize=10)
    fig.tight_layout()
    plt.show()


def row_state(layer, head, query):
    probs = trace[f"h.{layer}.attn.probs"][head]  # [T, T]
    chars = [label(c) for c in line]
    heatmap = bookkit.Heatmap(
        probs, chars, chars, highlight_row=query, xlabel="key", ylabel="query", colorbar="attention weight"
    )
    bars = bookkit.Bars({"weight": probs[query]}, labels=chars, highlight=query, ymax=1, ylabel="weight")
    return bookkit.State(row_title(layer, head, query), [heatmap, bars])


if not GRADING:
    bookkit.explore(
        [
            bookkit.Slider("layer", range(config.n_layer)),
            bookkit.Slider("head", range(config.n_head)),
            bookkit.Select(
                "query", [(f"{t}: {label(c)}", t) for t, c in enumerate(line)], value=len(line) - 1
            ),
        ],
        live=show_row,
        static=row_state,
    )

# %% [markdown]
# In the web book the model also runs in the page. Type any line, choose a layer and a head, and
# see where the last character's query puts its weight; the table under it lists every station of
# `lib`'s trace at that last position, under the names used above.
#
# <div class="fp-live" data-prompt="But, soft! what light" data-parts="attention trace">
# <p><em>The live model runs here in the web book served over http (<code>make serve</code>); opened from disk, or in a notebook, the page shows this line instead.</em></p>
# </div>

# %% [markdown]
# ## The MLP
#
# The second sublayer is a small two-layer network applied to every position **on its own**,
# with the same weights at every position:
#
# $$\begin{aligned}
# \operatorname{MLP}(x) &= h\, W_\text{proj} + b_\text{proj}, \\
# h &= \operatorname{GELU}(x W_\text{fc} + b_\text{fc}),
# \end{aligned}$$
#
# with `c_fc` of shape $(d, d_\text{ff})$ and `c_proj` of shape $(d_\text{ff}, d)$; GPT-2 uses
# $d_\text{ff} = 4d$. The MLP holds about two thirds of a block's weights ($8d^2$ of roughly $12d^2$). Attention decides
# *where* to read from; the MLP transforms *what* has been gathered at each position.
#
# The nonlinearity in between is the **GELU** {cite}`hendrycks2016gelu`, $x \Phi(x)$ with $\Phi$ the
# standard normal CDF: a smooth gate that lets positive inputs through, squashes large negative
# ones to zero, and dips slightly below zero in between. GPT-2 computes it with a
# tanh approximation, and a checkpoint trained with it should be run with it:
#
# $$\begin{aligned}
# \operatorname{GELU}(x) &\approx \tfrac12 x \big(1 + \tanh u\big), \\
# u &= \sqrt{2/\pi}\,\big(x + 0.044715\, x^3\big).
# \end{aligned}$$
#
# Llama's MLP uses a close cousin, **SiLU** $x \sigma(x)$, which we meet again with SwiGLU.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Curves of ReLU, GELU (tanh approximation) and SiLU for inputs from -4 to 4: all three are near zero for negative inputs and near the identity for positive ones; GELU and SiLU are smooth and dip slightly below zero."}}
if not GRADING:
    z = np.linspace(-4, 4, 401)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(z, np.maximum(z, 0), color="gray", ls="--", label="ReLU")
    ax.plot(z, lib.gelu(z), label="GELU (tanh approximation)")
    ax.plot(z, lib.silu(z), label=r"SiLU $x\,\sigma(x)$")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("x")
    ax.legend()
    fig.tight_layout()
    plt.show()
    print(f"max |GELU tanh - GELU exact| on [-4, 4]: {np.abs(lib.gelu(z) - lib.gelu_exact(z)).max():.1e}")
    print(f"minimum of GELU: {lib.gelu(z).min():.3f} at x = {z[lib.gelu(z).argmin()]:.2f}")


# %% nbgrader={"grade": false, "grade_id": "gelu-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gelu(x):
    """GELU, tanh approximation (GPT-2's).

    Task: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3))), element-wise.
    Shapes: x (any shape) -> same shape and dtype
    Example: gelu(np.array([-1., 0., 1.])) -> array([-0.1588, 0., 0.8412])
    Hints: use math.sqrt and math.pi (plain floats) so a float32 x stays float32.
    """
    ### BEGIN SOLUTION
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "gelu", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/gelu", gelu)


# %% nbgrader={"grade": false, "grade_id": "mlp-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def mlp(x, params):
    """GPT-2's MLP: expand to d_ff, GELU, project back to d.

    Task: gelu(x @ W_fc + b_fc) @ W_proj + b_proj, with your gelu.
    Shapes: x (..., d); params = {"c_fc": {"w": (d, d_ff), "b": (d_ff,)},
        "c_proj": {"w": (d_ff, d), "b": (d,)}} -> (..., d)
    Example: x of shape (5, 8) with d_ff = 32: hidden layer (5, 32) -> output (5, 8)
    Hints: two affine maps with the activation in between; nothing mixes positions here.
    """
    ### BEGIN SOLUTION
    hidden = gelu(x @ params["c_fc"]["w"] + params["c_fc"]["b"])  # [..., d_ff]
    return hidden @ params["c_proj"]["w"] + params["c_proj"]["b"]  # [..., d]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "mlp", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/mlp", mlp, gelu=gelu)

# %% [markdown]
# ## The whole block
#
# Put the pieces together in the pre-norm order, with both residual connections:
#
# $$\begin{aligned}
# r_\text{mid} &= X + \operatorname{MHA}\big(\operatorname{LN}_1(X)\big) \\
# r_\text{post} &= r_\text{mid} + \operatorname{MLP}\big(\operatorname{LN}_2(r_\text{mid})\big)
# \end{aligned}$$
#
# where $r_\text{mid}$ and $r_\text{post}$ are the stream between the two sublayers and after the
# second, `resid_mid` and `resid_post` in `lib`'s trace.
#
# A block's parameters mirror the checkpoint: `params = {"ln_1": {"g", "b"}, "attn": {"c_attn",
# "c_proj"}, "ln_2": {"g", "b"}, "mlp": {"c_fc", "c_proj"}}`. The check names the intermediate
# results `ln_1`, `attn.out`, `resid_mid`, `ln_2`, `mlp.out` and `resid_post`: `lib`'s trace names
# without the `h.0.` prefix.


# %% nbgrader={"grade": false, "grade_id": "block-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def block(x, params, n_head):
    """One pre-norm GPT-2 block: attention and MLP, each added back to the stream.

    Task: resid_mid = x + attention of the first norm of x; return resid_mid + the MLP of the
        second norm of resid_mid. Use your layer_norm, multi_head_attention and mlp.
    Shapes: x (..., T, d); params as described above -> (..., T, d)
    Example: x of shape (5, 8), n_head = 2 -> shape (5, 8); changing x[4] leaves out[:4] as is.
    Hints: layer_norm(x, **params["ln_1"]) passes g and b by name. The norms feed the sublayers
        only: the residual adds to the raw stream.
    """
    ### BEGIN SOLUTION
    x = x + multi_head_attention(layer_norm(x, **params["ln_1"]), params["attn"], n_head)  # resid_mid
    return x + mlp(layer_norm(x, **params["ln_2"]), params["mlp"])  # resid_post
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "block", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check(
    "02-transformer-block/block",
    block,
    layer_norm=layer_norm,
    multi_head_attention=multi_head_attention,
    mlp=mlp,
)

# %% [markdown]
# ### Stacking blocks
#
# The whole transformer body is a loop. Below, `lib`'s stage functions rebuild the shipped model's
# forward pass by hand (embed, $L$ blocks, the final LayerNorm, the output layer of chapter 3) and
# the result is compared with `model.forward`:

# %%
p = model.params
x = lib.embed(ids, p["wte"], p["wpe"])  # [T, d]: lib's blocks take one sequence, or a batch (B, T, d)
for layer in p["h"]:
    x = lib.block(x, layer, config)  # [T, d] -> [T, d]
by_hand = lib.lm_head(lib.layer_norm(x, p["ln_f"]["g"], p["ln_f"]["b"]), p["wte"].T)  # [T, V]
print("shape of the stream after the last block:", x.shape)
print("largest difference from model.forward:", np.abs(by_hand - model.forward(ids)).max())

# %% [markdown]
# Because every sublayer adds to the stream, the stream's size tends to grow from block to block,
# while every sublayer reads a normalised copy of it. The figure shows the average length
# $\lVert x_t \rVert$ of the stream vectors after each write, and the length of each write itself.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Line plot of the average norm of the residual stream vectors after the embedding and after each attention and MLP write of the Shakespeare model, with bars for the norm of each sublayer's output."}}
if not GRADING:
    points = ["embed.out"] + [
        f"h.{i}.{s}" for i in range(config.n_layer) for s in ("resid_mid", "resid_post")
    ]
    writes = [f"h.{i}.{s}" for i in range(config.n_layer) for s in ("attn.out", "mlp.out")]
    stream_norm = [np.linalg.norm(trace[n], axis=-1).mean() for n in points]
    write_norm = [np.linalg.norm(trace[n], axis=-1).mean() for n in writes]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.bar(np.arange(1, len(points)), write_norm, color="tab:orange", alpha=0.6, label="sublayer output")
    ax.plot(np.arange(len(points)), stream_norm, "o-", color="tab:blue", label="residual stream")
    names = ["embed"] + [
        f"{i}.{'attn' if s == 'resid_mid' else 'mlp'}"
        for i in range(config.n_layer)
        for s in ("resid_mid", "resid_post")
    ]
    ax.set_xticks(np.arange(len(points)), names, rotation=60)
    ax.set_ylabel(r"mean $\|x_t\|$")
    ax.legend()
    fig.tight_layout()
    plt.show()

# %% [markdown]
# **Concept check.** The Shakespeare model runs its four blocks in turn. Suppose you skip block 1:
# the stream that block 0 returns goes straight into block 2. What does block 2 then read?
#
# - (a) Nothing it can use: block 2 only accepts what block 1 returns, so the forward pass fails.
# - (b) The embedding plus block 0's writes: everything block 1 would have passed on except block
#   1's own additions. The model still runs, and predicts worse.
# - (c) Only what block 0 wrote: the embedding travelled inside block 1 and is lost with it.
# - (d) Exactly what it reads normally, because the final LayerNorm undoes block 1's additions.

# %% nbgrader={"grade": false, "grade_id": "q_skip_block-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_skip_block = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_skip_block = "b"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_skip_block", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/q_skip_block", answer_q_skip_block)

# %% [markdown]
# ## Break it
#
# Each design choice of this chapter can be switched off in a copy of the forward pass, keeping the
# trained weights. The function below rebuilds the model from `lib`'s stage functions, with four
# switches: the causal mask, the $1/\sqrt{d_\text{head}}$ scale, the residual connections, and
# the blocks to skip. With every switch at its default it reproduces `model.forward`.


# %%
def forward_variant(ids, *, mask=True, scale=True, residual=True, skip=()):
    """The shipped model's logits, optionally without the mask, the scale, the residuals or some blocks."""
    p, H = model.params, config.n_head
    x = lib.embed(ids, p["wte"], p["wpe"])  # [..., T, d]
    T = x.shape[-2]
    for index, layer in enumerate(p["h"]):
        if index in skip:
            continue
        h = lib.layer_norm(x, layer["ln_1"]["g"], layer["ln_1"]["b"])
        qkv = lib.linear(h, layer["attn"]["c_attn"]["w"], layer["attn"]["c_attn"]["b"])
        q, k, v = (lib.split_heads(a, H) for a in np.split(qkv, 3, axis=-1))  # [..., H, T, d_head]
        scores = lib.attention_scores(q, k)
        if scale:
            scores = scores / math.sqrt(q.shape[-1])
        if mask:
            scores = np.where(lib.causal_mask(T), scores, -np.inf)
        heads = lib.softmax(scores, axis=-1) @ v
        out = lib.linear(lib.merge_heads(heads), layer["attn"]["c_proj"]["w"], layer["attn"]["c_proj"]["b"])
        x = x + out if residual else out
        out = lib.mlp(lib.layer_norm(x, layer["ln_2"]["g"], layer["ln_2"]["b"]), layer["mlp"])
        x = x + out if residual else out
    x = lib.layer_norm(x, p["ln_f"]["g"], p["ln_f"]["b"])
    return lib.lm_head(x, p["wte"].T)  # [..., T, V]


print("all switches on, largest difference from model.forward:", np.abs(forward_variant(ids) - logits).max())

# %% [markdown]
# We score each variant on four windows of held-out text (the loss of chapter 3: the average
# negative log-probability of each next character, lower is better) and ask it for its favourite
# next character after a prompt.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Bar chart of the held-out loss of the Shakespeare model as it is, and with the causal mask, the attention scale or the residual connections removed, or block 1 skipped, against the loss of a uniform guess."}}
if not GRADING:
    n_ctx = config.n_ctx
    starts = np.linspace(0, len(heldout) - n_ctx - 2, 4).astype(int)
    windows = np.stack([model.tokenizer.encode(heldout[s : s + n_ctx]) for s in starts])  # [4, n_ctx]
    prompt = "KING.\nTell me, sirrah, but tell me true I charge yo"
    prompt_ids = model.tokenizer.encode(prompt)
    variants = {
        "as trained": {},
        "no mask": {"mask": False},
        "no scale": {"scale": False},
        "no residual": {"residual": False},
        "skip block 1": {"skip": (1,)},
    }
    losses = {}
    for name, switches in variants.items():
        out = forward_variant(windows, **switches)
        losses[name] = lib.cross_entropy(out[:, :-1], windows[:, 1:])
        probs = lib.softmax(forward_variant(prompt_ids, **switches)[-1])
        top = np.argsort(probs)[::-1][:3]
        guesses = ", ".join(f"{label(model.tokenizer.decode(np.array([i])))!s} {probs[i]:.2f}" for i in top)
        print(f"{name:>12}: held-out loss {losses[name]:.3f} nats/char; after {prompt[-12:]!r}: {guesses}")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.bar(list(losses), list(losses.values()), color=["tab:blue"] + ["tab:red"] * (len(losses) - 1))
    ax.axhline(math.log(config.vocab_size), color="gray", ls=":", lw=1, label="uniform guess, log V")
    ax.set_ylabel("held-out loss (nats/char)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(loc="upper left")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# Each switch breaks the model in its own way:
#
# - **No mask.** Every position can now read later characters, including the very character it
#   is asked to predict. One might expect a lower loss ("cheating"), but the weights were trained
#   never to see the future: the queries and keys were not shaped to find it, and the extra keys
#   only dilute the attention each query learned to pay. The model is asked a question it was
#   never trained on. The prompt's last character has no future to see, so the guess after it
#   moves little (only through the earlier positions it reads in later layers); the loss, averaged
#   over positions that do have a future, is what suffers.
# - **No scale.** The scores are $\sqrt{d_\text{head}}$ times larger than in training, so every
#   softmax is much sharper: each head locks onto its top key and ignores the others.
# - **No residual.** Each sublayer's output replaces the stream instead of being added to it: the
#   embedding is thrown away after the first sublayer, and every later sublayer receives an input
#   unlike anything it saw in training.
# - **Skip block 1.** Block 2 reads the embedding and block 0's writes, all of
#   what it normally reads except block 1's additions, so the model keeps working, only less well:
#   each block refines a shared stream rather than handing the next block something only it can
#   read.
#
# ## The modern block
#
# Models since GPT-2 have kept the pre-norm residual design and changed four of its parts. Llama
# {cite}`touvron2023llama` is the usual reference. Each change is small, and `lib` implements each as
# a switch of its `Config`:
#
# | part | GPT-2 | Llama-style |
# |---|---|---|
# | normalisation | LayerNorm | RMSNorm |
# | positions | learned table added to the embedding | rotary embedding (RoPE) of $q$ and $k$ |
# | MLP | GELU, $d_\text{ff} = 4d$ | SwiGLU |
# | key/value heads | one per query head | shared by a group of query heads (GQA) |
# | biases | in every linear layer and norm | none |
#
# ### RMSNorm
#
# RMSNorm {cite}`zhang2019root` drops LayerNorm's centring and its bias, and divides by the root mean
# square instead of the standard deviation:
#
# $$\operatorname{RMSNorm}(x) = \frac{x}{\sqrt{\frac1d \sum_j x_j^2 + \varepsilon}} \odot g.$$
#
# It is cheaper (one statistic instead of two) and trains as well; the rescaling, not the
# centring, seems to be what matters.


# %% nbgrader={"grade": false, "grade_id": "rms_norm-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rms_norm(x, g, eps=1e-6):
    """RMSNorm over the last axis: no centring, no bias.

    Task: divide x by sqrt(mean(x**2) + eps) over the last axis, then multiply by the gain g.
    Shapes: x (..., d); g (d,) -> (..., d), same dtype as x
    Example: rms_norm(np.array([[3., 4.]]), np.ones(2)) -> array([[0.8485, 1.1314]])
        (mean square 12.5)
    Hints: np.mean(x * x, axis=-1, keepdims=True).
    """
    ### BEGIN SOLUTION
    mean_square = np.mean(x * x, axis=-1, keepdims=True)  # [..., 1]
    return x / np.sqrt(mean_square + eps) * g
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "rms_norm", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/rms_norm", rms_norm)

# %% [markdown]
# ### Rotary position embeddings
#
# GPT-2 adds a learned position vector to each token once, at the bottom of the stack. RoPE
# {cite}`su2021roformer` instead encodes position inside every attention layer, by *rotating* each
# query and key according to its position. The features of a head are grouped in pairs; pair $j$
# of the vector at position $m$ turns by the angle $m\,\theta_j$, with
# $\theta_j = \theta^{-2j/d_\text{head}}$ ($\theta = 10000$ by default), so early pairs spin fast and
# late pairs slowly:
#
# $$\begin{pmatrix} x'_a \\ x'_b \end{pmatrix} = \begin{pmatrix} \cos m\theta_j & -\sin m\theta_j \\ \sin m\theta_j & \cos m\theta_j \end{pmatrix}
# \begin{pmatrix} x_a \\ x_b \end{pmatrix}.$$
#
# Rotations preserve dot products up to the angle between them, so a rotated query at position $m$
# and a rotated key at position $n$ have a dot product that depends on the positions only through
# $m - n$: attention sees *relative* positions, and the values are not rotated at all.
#
# **Which features form a pair?** The RoFormer paper pairs neighbours, $(x_{2j}, x_{2j+1})$: the
# *interleaved* layout. `lib`, like Hugging Face's Llama code, pairs feature $j$ with feature
# $j + d_\text{head}/2$: the *halves* layout, where $(x_a, x_b) = (x_j, x_{j+d_\text{head}/2})$. The
# two give the same model up to a fixed reordering of the query and key features, that is, of the
# columns of $W_Q$ and $W_K$; Hugging Face checkpoints are stored with their weights already
# reordered for halves, so a loader of those checkpoints must rotate halves. With halves the
# rotation of all pairs at once reads
#
# $$\begin{aligned}
# x' &= x \odot \cos\phi + \rho(x) \odot \sin\phi, \\
# \rho([x_1, x_2]) &= [-x_2, x_1],
# \end{aligned}$$
#
# where $\rho$ is `rotate_half`, $x_1, x_2$ are the two halves of $x$, and $\phi$ lists the angles
# $m\theta_0, \dots, m\theta_{d_\text{head}/2-1}$ twice, once for each half.


# %% nbgrader={"grade": false, "grade_id": "apply_rope-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def apply_rope(x, positions, theta=10000.0):
    """Rotate queries or keys by their positions (RoPE, halves layout as in lib).

    Task: pair feature j with feature j + d_head/2; turn pair j of the token at position m by the
        angle m * theta ** (-2j / d_head).
    Shapes: x (..., T, d_head); positions int (T,) -> same shape and dtype as x
    Example: at position 0 nothing turns: apply_rope(x, np.zeros(T, int)) == x. With d_head = 2
        and x = [[1., 0.]] at position 1 the pair turns by 1 radian: [[cos 1, sin 1]].
    Hints: angles = positions[:, None] * inv_freq has shape (T, d_head/2); concatenate it with
        itself along the last axis for the two halves. rotate_half(x) is
        np.concatenate([-x2, x1], axis=-1). np.cos of int positions gives float64: cast the
        result back with .astype(x.dtype).
    """
    ### BEGIN SOLUTION
    d_head = x.shape[-1]
    inv_freq = theta ** (-np.arange(0, d_head, 2) / d_head)  # [d_head/2]
    angles = np.asarray(positions)[:, None] * inv_freq  # [T, d_head/2]
    angles = np.concatenate([angles, angles], axis=-1)  # [T, d_head]
    x1, x2 = x[..., : d_head // 2], x[..., d_head // 2 :]
    rotated = np.concatenate([-x2, x1], axis=-1)  # rotate_half
    return (x * np.cos(angles) + rotated * np.sin(angles)).astype(x.dtype)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "apply_rope", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/apply_rope", apply_rope)

# %% [markdown]
# Two properties, checked numerically with `lib.apply_rope`. First, the score of a rotated query
# and key depends only on their distance: the same pair of vectors placed at positions $(m, n)$ and
# $(m + 7, n + 7)$ gives the same dot product. Second, the interleaved layout is the halves layout
# with the features reordered: interleaved RoPE on $x$ equals halves RoPE on $x$ with its features
# taken in the order $0, 2, 4, \dots, 1, 3, 5, \dots$, put back in place afterwards.


# %%
def rope_interleaved(x, positions, theta=10000.0):
    """RoFormer's layout: pairs (2j, 2j+1) turn by positions * theta**(-2j/d_head)."""
    d_head = x.shape[-1]
    angles = lib.rope_angles(positions, d_head, theta)  # [T, d_head/2]
    cos, sin = np.cos(angles), np.sin(angles)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


d_head = 8
qv, kv = rng.standard_normal((2, 1, d_head))
for m, n in [(3, 1), (10, 8), (50, 48)]:
    qm = lib.apply_rope(qv, np.array([m]))
    kn = lib.apply_rope(kv, np.array([n]))
    print(f"query at {m:2d}, key at {n:2d} (distance {m - n}): score {(qm @ kn.T).item():+.6f}")

x8 = rng.standard_normal((5, d_head))
order = np.concatenate([np.arange(0, d_head, 2), np.arange(1, d_head, 2)])  # 0, 2, 4, 6, 1, 3, 5, 7
halves_on_reordered = lib.apply_rope(x8[:, order], np.arange(5))
back = np.empty_like(halves_on_reordered)
back[:, order] = halves_on_reordered
print("interleaved == halves on reordered features:", np.allclose(rope_interleaved(x8, np.arange(5)), back))

# %% [markdown]
# ### SwiGLU
#
# Llama replaces the GELU MLP by a *gated* one {cite}`shazeer2020glu`: two projections of the input
# are computed side by side, one goes through SiLU and acts as a gate that multiplies the other
# element by element, and a third matrix projects back:
#
# $$\begin{aligned}
# \operatorname{SwiGLU}(x) &= \big(g \odot x W_\text{up}\big)\, W_\text{down}, \\
# g &= \operatorname{SiLU}(x W_\text{gate}), \\
# \operatorname{SiLU}(z) &= z\,\sigma(z) = \frac{z}{1 + e^{-z}}.
# \end{aligned}$$
#
# With three matrices instead of two, $d_\text{ff}$ is usually shrunk to about $\tfrac83 d$ so that
# the parameter count matches a $4d$ GELU MLP.


# %% nbgrader={"grade": false, "grade_id": "swiglu-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def swiglu(x, params):
    """Llama's gated MLP (no biases).

    Task: (silu(x @ W_gate) * (x @ W_up)) @ W_down, with silu(z) = z / (1 + exp(-z)).
    Shapes: x (..., d); params = {"gate_proj": {"w": (d, d_ff)}, "up_proj": {"w": (d, d_ff)},
        "down_proj": {"w": (d_ff, d)}} -> (..., d)
    Example: x of shape (5, 8) with d_ff = 20: gate and up (5, 20) -> output (5, 8)
    Hints: the SiLU goes on the gate branch only; the product is element-wise (*).
    """
    ### BEGIN SOLUTION
    gate = x @ params["gate_proj"]["w"]  # [..., d_ff]
    up = x @ params["up_proj"]["w"]  # [..., d_ff]
    silu = gate * 0.5 * (1 + np.tanh(gate / 2))  # = gate / (1 + exp(-gate)), with no overflow far below 0
    return (silu * up) @ params["down_proj"]["w"]  # [..., d]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "swiglu", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/swiglu", swiglu)

# %% [markdown]
# ### Grouped-query attention
#
# During generation, a model keeps the keys and values of every earlier token of every layer
# (the **KV cache**, which the chapters on generation and cost come back to), and reading that cache is what limits decoding speed on large
# models {cite}`pope2022efficiently`. Grouped-query attention {cite}`ainslie2023gqa` shrinks it:
# $h$ query heads share $h_{kv} < h$ key/value heads, each key/value head serving a group of
# $h / h_{kv}$ consecutive query heads. In the computation only one line changes: before the
# scores, each key and value head is repeated for its group (`lib.repeat_kv`). The projection
# `c_attn` becomes narrower, $(d, (h + 2h_{kv})\, d_\text{head})$, and the cache shrinks by
# $h / h_{kv}$. `lib`'s default Llama-style configuration:

# %%
llama = lib.Config.llama()
kv_bytes = 2 * llama.n_layer * llama.n_kv_head * llama.d_head * 4  # keys + values, float32
mha_bytes = 2 * llama.n_layer * llama.n_head * llama.d_head * 4
print(f"{llama.n_head} query heads, {llama.n_kv_head} key/value heads, d_head = {llama.d_head}")
print(
    f"KV cache per token: {kv_bytes / 1024:.0f} KiB with GQA, {mha_bytes / 1024:.0f} KiB with one KV head per query head"
)
k_small = rng.standard_normal((llama.n_kv_head, 5, llama.d_head))  # [KV, T, d_head]
print("repeat_kv:", k_small.shape, "->", lib.repeat_kv(k_small, llama.n_head // llama.n_kv_head).shape)

# %% [markdown]
# ### A Llama-style block in `lib`
#
# With these switches, `lib.block` runs a modern block. On a small random Llama-style
# configuration, the stream still enters and leaves with the same shape; the trace shows the new
# stations: `attn.q_rot` and `attn.k_rot` (after RoPE), `mlp.up` and `mlp.gated` (SwiGLU).

# %%
small = lib.Config.llama(vocab_size=64, n_ctx=32, d_model=32, n_layer=1, n_head=4, n_kv_head=2, d_ff=88)
small_params = lib.init_params(small, seed=0)
x_small = rng.standard_normal((1, 6, small.d_model)).astype(np.float32)
with lib.tracing() as small_trace, lib.scope("h.0"):  # record the block's stations, named h.0.*
    y_small = lib.block(x_small, small_params["h"][0], small)
print("in:", x_small.shape, " out:", y_small.shape)
for name, value in small_trace.items():
    print(f"{name:>18} {value.shape}")

# %% [markdown]
# ## Training and inference
#
# ### Every position at once
#
# The causal mask has a consequence that shapes how language models are trained. Predict it before
# reading on.
#
# **Concept check.** In a text of 20 tokens, the token at position 7 is changed and the model is
# run again, with its causal mask. Which positions' logits can change?
#
# - (a) positions 7 to 19
# - (b) all 20 positions
# - (c) positions 0 to 7
# - (d) position 7 only

# %% nbgrader={"grade": false, "grade_id": "q_causal-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_causal = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_causal = "a"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_causal", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("02-transformer-block/q_causal", answer_q_causal)

# %% [markdown]
# Position $t$ only ever reads positions $0, \dots, t$, so the logits at position $t$ are exactly
# what the model would compute if the text stopped at $t$: a change at position 7 reaches
# positions 7 to 19 and nothing before. One forward pass over a text of $T$ tokens therefore
# yields $T$ predictions, each made from its own prefix, and training scores all of them at once
# against the next tokens (chapter 3). Below, the end of our line is replaced by different
# characters, and we measure how much the logits change at each position.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Bar chart of the largest change in the logits at each position of the line when its last characters are replaced: zero at every position before the first replaced character, large from there on."}}
if not GRADING:
    cut = len(line) - 10
    other = line[:cut] + "my lord, I"[: len(line) - cut]
    logits_other = model.forward(model.tokenizer.encode(other))
    change = np.abs(logits_other - model.forward(ids)).max(axis=-1)  # [T]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.bar(np.arange(len(line)), change, color=np.where(np.arange(len(line)) < cut, "tab:blue", "tab:red"))
    ax.axvline(cut - 0.5, color="gray", ls=":")
    ax.set_xlabel("position")
    ax.set_ylabel("max |change in logits|")
    ax.set_title(f"{line[cut:]!r} replaced by\n{other[cut:]!r}")
    fig.tight_layout()
    plt.show()
    print(f"largest change before position {cut}: {change[:cut].max()}")

# %% [markdown]
# Generation is different: the next token is not known until it has been sampled, so a model
# produces text one position at a time. The mask guarantees that both ways agree: the prediction
# at position $t$ is the same whether the model saw the whole text or only its first $t+1$ tokens.
#
# ### What training records, and inference does not
#
# Training needs the gradient of the loss with respect to every weight, and a framework such as
# PyTorch gets it by **recording** the forward pass as it runs. Every operation creates a node of a
# *computation graph* that keeps its value, its parents (the inputs it was computed from) and the
# local derivative with respect to each parent. The backward pass then walks the graph from the
# loss back to the weights, multiplying local derivatives along the way (the chain rule). Here is
# the idea in a few lines, on one neuron $\operatorname{relu}(w_1 x_1 + w_2 x_2 + b)$:


# %%
class Value:
    """A number that remembers how it was computed: its parents and the local derivatives."""

    def __init__(self, data, parents=(), local_grads=(), op="input"):
        self.data, self.parents, self.local_grads, self.op = data, parents, local_grads, op

    def __add__(self, other):
        return Value(self.data + other.data, (self, other), (1.0, 1.0), "+")

    def __mul__(self, other):
        return Value(self.data * other.data, (self, other), (other.data, self.data), "*")

    def relu(self):
        return Value(max(self.data, 0.0), (self,), (float(self.data > 0),), "relu")


def graph(node, seen=None):
    """Every node the output depends on, inputs first."""
    seen = [] if seen is None else seen
    for parent in node.parents:
        graph(parent, seen)
    if all(node is not s for s in seen):
        seen.append(node)
    return seen


w1, x1, w2, x2, b = Value(0.5), Value(2.0), Value(-1.5), Value(1.0), Value(1.0)
y = (w1 * x1 + w2 * x2 + b).relu()
for node in graph(y):
    parents = ", ".join(f"{p.data:g}" for p in node.parents)
    print(f"{node.op:>6}: value {node.data:+g}  parents ({parents})  local grads {node.local_grads}")

# %% [markdown]
# A real framework records the same thing with arrays: for every operation, the arrays its
# backward step will need. `lib`'s trace is a lower bound on that record, since it keeps only the
# named intermediates of each stage and not the temporaries inside LayerNorm, GELU or the softmax.
# For one full window of the shipped model it already holds this much:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Horizontal bar chart comparing memory in megabytes: the model's weights, the named intermediates of one forward pass over a full window recorded by the trace, and the keys and values an inference pass keeps for the same tokens."}}
if not GRADING:
    window = windows[:1]  # [1, n_ctx]
    _, full_trace = model.forward(window, trace=True)
    trace_bytes = sum(a.nbytes for a in full_trace.values())
    weight_bytes = model.num_params() * model.dtype.itemsize
    kv_cache_bytes = sum(
        full_trace[f"h.{i}.attn.{n}"].nbytes for i in range(config.n_layer) for n in ("k", "v")
    )
    scores_bytes = sum(v.nbytes for n, v in full_trace.items() if ".attn.scores" in n or n.endswith(".probs"))
    print(
        f"{len(full_trace)} named intermediates for {window.shape[1]} tokens: {trace_bytes / 2**20:.1f} MiB"
    )
    print(f"  of which attention scores and weights (T x T per head): {scores_bytes / 2**20:.1f} MiB")
    print(
        f"weights: {weight_bytes / 2**20:.1f} MiB; keys and values of every layer: {kv_cache_bytes / 2**20:.2f} MiB"
    )
    fig, ax = plt.subplots(figsize=(5.5, 2.6))
    bars = {
        "weights": weight_bytes,
        "trace\n(training-style)": trace_bytes,
        "keys + values\n(inference)": kv_cache_bytes,
    }
    ax.barh(
        list(bars)[::-1],
        np.array(list(bars.values())[::-1]) / 2**20,
        color=["tab:green", "tab:red", "tab:blue"],
    )
    ax.set_xlabel("MiB")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# Inference needs none of this record. With no gradient to compute, each intermediate can be
# dropped as soon as the next stage has read it: `model.forward(ids)` without `trace` keeps the
# stream, the temporaries of the sublayer it is computing, and nothing else, and a framework is
# told the same with `torch.no_grad()` or `torch.inference_mode()`. What inference does keep, when
# it generates one token at a time, is each layer's keys and values, so that earlier tokens need
# not be recomputed: the KV cache, far smaller than the training record.
#
# ## Summary
#
# - A block maps the stream $(T, d) \to (T, d)$: $X \leftarrow X + \operatorname{Attn}(\operatorname{LN}_1(X))$,
#   then $X \leftarrow X + \operatorname{MLP}(\operatorname{LN}_2(X))$. Sublayers read a normalised
#   copy and add their result; the stream is never overwritten, so blocks stack.
# - LayerNorm works per token over the features, with the biased variance and $\varepsilon$ inside
#   the square root, then a gain and a bias.
# - Attention: scores $QK^\top/\sqrt{d_\text{head}}$, the causal mask ($-\infty$ above the diagonal)
#   before a softmax over keys, then a weighted sum of values. Many heads work in $d/h$-wide
#   slices, split with reshape-then-transpose, merged head 0 first, and mixed by the output
#   projection.
# - The MLP (GELU, $d_\text{ff} = 4d$) works on every position alone; attention is the only place
#   positions meet.
# - Modern blocks swap in RMSNorm, RoPE (`lib` pairs the halves $j, j + d_\text{head}/2$), SwiGLU and
#   grouped-query attention, and keep everything else.
# - The causal mask makes position $t$'s output independent of later tokens, so training scores
#   every position in one pass; training also records the forward pass for the backward pass,
#   which inference does not need.
#
# Chapter 3 takes the stream leaving the last block and turns it into a distribution over the next
# token.
