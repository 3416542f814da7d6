# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Every number of one forward pass
#
# :::{admonition} In this chapter
# :class: note
# - **You will be able to** follow one forward pass of a real (tiny) GPT-2 by hand, number by
#   number, from token ids to the loss, and recompute any station of it in a few lines of NumPy.
# - **It assumes** chapters 1 to 3. Chapter 4 is not needed.
# - **Time:** about 2 hours: 45 minutes of reading, 1 hour 15 minutes for eight exercises and two
#   questions.
# :::
#
# The earlier chapters built each stage of the forward pass on models with hundreds of features per
# token. That is realistic, but nobody can look at a vector of hundreds of numbers and see what
# happened to it.
# This chapter goes the other way: a model so small that **every intermediate number fits on the
# page**, run on a two-word input, one station at a time, from the token ids to the loss.
#
# The model is a real GPT-2-style transformer {cite}`radford2019language`, with every piece of the
# real one: learned positions, pre-norm LayerNorms, two attention heads, a GELU MLP four times as
# wide as the stream, residual connections, a final norm and a tied LM head. Only the sizes are
# tiny: one block, a stream of width $d = 4$, two heads of width $2$, and a vocabulary of three
# tokens, `AI`, `rocks` and an end-of-sequence token `<eos>`. Its weights were not trained: they
# were chosen by hand, with one decimal place, so that you can redo any product in your head, and
# so that the model does something worth following: after "AI" it expects "rocks", and after
# "AI rocks" it expects the sequence to end.
#
# Every table below is printed from `lib`'s trace when the page is built, and every exercise asks
# you to recompute one station with a few lines of NumPy; the checks compare your numbers with the
# trace and name the first station that differs.
#
# :::{admonition} How the checks work
# :class: tip
# Replace `raise NotImplementedError()` in each exercise with your code, run the cell, then the
# check below it: it prints ✔ or names the mistake it recognises.
# <!-- class only -->
# When you submit, the grader runs your functions on inputs you do not see (other token sequences,
# float64, other weights), so a function that only reproduces the visible numbers fails there.
# Before you submit, run `nbgrader validate worked_toy.ipynb` in a terminal in this folder: it runs the
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
from html import escape

import numpy as np
from IPython.display import HTML, display

import lib
from grader.check import check

GRADING = "NBGRADER_EXECUTION" in os.environ  # the autograder skips figures and widgets
rng = np.random.default_rng(0)
np.set_printoptions(precision=4, suppress=True)
if not GRADING:  # presentation only: grading neither needs it nor sees it
    import matplotlib.pyplot as plt

    import bookkit

    bookkit.style.use()  # figures as SVG, sized to read on a phone

toy = lib.load_pretrained("toy")
config, params = toy.config, toy.params
TOKENS = [toy.tokenizer.token(i) for i in range(config.vocab_size)]
toy


# %%
def cell(value, digits):
    """One number as the tables print it: -inf as a symbol, no '-0.000'."""
    if np.isneginf(value):
        return "-∞"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def table(values, rows=None, cols=None, title="", digits=3):
    """An HTML table of a 1-D or 2-D array, with row and column labels."""
    values = np.asarray(values, dtype=np.float64)
    values = values[None] if values.ndim == 1 else values
    rows = rows if rows is not None else [str(i) for i in range(values.shape[0])]
    cols = cols if cols is not None else [str(j) for j in range(values.shape[1])]
    pad = "padding:1px 7px;"
    head = "".join(f'<th style="{pad}text-align:right">{escape(str(c))}</th>' for c in cols)
    body = "".join(
        f'<tr><th style="{pad}text-align:left">{escape(str(r))}</th>'
        + "".join(
            f'<td style="{pad}text-align:right;font-family:monospace">{cell(v, digits)}</td>' for v in row
        )
        + "</tr>"
        for r, row in zip(rows, values, strict=True)
    )
    caption = f'<caption style="caption-side:top;text-align:left"><code>{escape(title)}</code></caption>'
    return f'<table style="border-collapse:collapse;margin:0">{caption if title else ""}<thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>'


def show(*tables):
    """Tables side by side (they wrap on a narrow screen)."""
    display(
        HTML(
            '<div style="display:flex;flex-wrap:wrap;gap:1.2em 2em;align-items:flex-start">'
            + "".join(tables)
            + "</div>"
        )
    )


def features(n, prefix=""):
    return [f"{prefix}{j}" for j in range(n)]


# %% [markdown]
# ## The toy model
#
# Here is its configuration, read from the checkpoint in `lib/models/toy/` (a Hugging Face GPT-2
# checkpoint: `transformers` loads the same files and computes the same logits). The MLP's width
# is $d_\text{ff} = 4d$, as in GPT-2.

# %%
print(f"vocabulary:  {dict(enumerate(TOKENS))}")
for name in ("vocab_size", "n_ctx", "d_model", "n_layer", "n_head", "d_head", "d_ff", "norm_eps", "gelu"):
    print(f"{name:11}  {getattr(config, name)}")
print(f"weights:     {toy.num_params()} numbers, all of them in the tables below")

# %% [markdown]
# ### A map of the pass
#
# `model.forward(ids, trace=True)` returns the logits and an ordered dictionary of every
# intermediate, under the names documented in `lib/model.py`. The map below puts the stations in
# the order they are computed, each box labelled with its trace name. The two orange boxes are the
# residual connections, where the stream carried around a sublayer is added back.

# %% tags=["hide-input"]
DIAGRAM = [
    ("ids", "token ids", "outside"),
    ("embed.out", "embed.tok + embed.pos", "pass"),
    ("h.0.ln_1", "LayerNorm 1", "pass"),
    ("h.0.attn.q / k / v", "per-head projections", "pass"),
    ("h.0.attn.scores_*", "raw, scaled, masked", "pass"),
    ("h.0.attn.probs", "softmax over keys", "pass"),
    ("h.0.attn.heads", "weights @ values", "pass"),
    ("h.0.attn.merged", "heads side by side", "pass"),
    ("h.0.attn.out", "output projection", "pass"),
    ("h.0.resid_mid", "embed.out + attn.out", "residual"),
    ("h.0.ln_2", "LayerNorm 2", "mlp"),
    ("h.0.mlp.pre_act", "expand to d_ff", "mlp"),
    ("h.0.mlp.post_act", "GELU", "mlp"),
    ("h.0.mlp.out", "project back to d", "mlp"),
    ("h.0.resid_post", "resid_mid + mlp.out", "residual"),
    ("ln_f", "final LayerNorm", "pass"),
    ("logits", "ln_f @ wte.T (tied head)", "pass"),
    ("probs, loss", "softmax, -log p(target)", "outside"),
]
if not GRADING:
    bookkit.flow(
        [bookkit.Step(name, what, kind, code=True) for name, what, kind in DIAGRAM],
        label="The toy's forward pass, station by station, with lib's trace names",
        legend={
            "pass": "attention and the head",
            "mlp": "the MLP",
            "residual": "a residual connection: adds the stream back",
        },
    )

# %% [markdown]
# ## The input and its targets
#
# A language model is trained to predict each next token, so a training sequence gives as many
# examples as it has positions. Take the sequence "AI rocks `<eos>`". The model reads all but the
# last token, `AI rocks`, and at each position it is scored on the token that comes next: `rocks`
# after "AI", and `<eos>` after "AI rocks". In code, the inputs are `ids[:-1]` and the targets are
# `ids[1:]`, the input shifted by one.

# %%
ids = toy.tokenizer.encode("AI rocks <eos>")
inputs, targets = ids[:-1], ids[1:]
print("ids:    ", ids, "=", [TOKENS[i] for i in ids])
print("inputs: ", inputs, "=", [TOKENS[i] for i in inputs])
print("targets:", targets, "=", [TOKENS[i] for i in targets])

logits, trace = toy.forward(inputs, trace=True)
T = len(inputs)
# Row labels, position and token: "1: rocks" joined by a no-break space, kept on one line beside a
# table on a phone.
POS = [f"{t}:\N{NO-BREAK SPACE}{TOKENS[i]}" for t, i in enumerate(inputs)]
print(f"\nthe trace has {len(trace)} stations:")
for name, value in trace.items():
    print(f"  {name:22} {str(value.shape):10}")

# %% [markdown]
# ## Station 1: token and position embeddings
#
# The token embedding matrix $E$ (`wte`) has one row per token; the position matrix $P$ (`wpe`) one
# row per position, up to $n_\text{ctx} = 4$. These are the model's first weights:

# %%
show(
    table(params["wte"], TOKENS, features(4, "d"), "wte: E, one row per token"),
    table(params["wpe"], features(4, "pos "), features(4, "d"), "wpe: P, one row per position"),
)

# %% [markdown]
# The stream that enters the block is the sum of the token's row and the position's row,
#
# $$x_t = E_{i_t} + P_t ,$$
#
# so "AI" at position 0 gets row `AI` of $E$ plus row 0 of $P$:

# %%
show(
    table(trace["embed.tok"], POS, features(4, "d"), "embed.tok"),
    table(trace["embed.pos"], POS, features(4, "d"), "embed.pos"),
    table(trace["embed.out"], POS, features(4, "d"), "embed.out"),
)


# %% nbgrader={"grade": false, "grade_id": "toy_embed-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def toy_embed(ids, wte, wpe):
    """The stream entering the block: token rows plus position rows.

    Task: return x with x[t] = wte[ids[t]] + wpe[t] for every position t of one sequence.
    Shapes: ids, int (T,); wte (V, d); wpe (n_ctx, d) -> (T, d), same dtype as wte
    Example: toy_embed(np.array([0, 1]), params["wte"], params["wpe"]) is the table
        embed.out above.
    Hints: the token at position t gets row t of wpe whatever its id; wpe[:T] has one row per
        position.
    """
    ### BEGIN SOLUTION
    return wte[ids] + wpe[: len(ids)]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "toy_embed", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("05-worked-toy/toy_embed", toy_embed)

# %% [markdown]
# ## Station 2: LayerNorm 1
#
# Before attention reads the stream, each token's row is normalised on its own
# {cite}`ba2016layer`: subtract the row's mean $\mu_t$, divide by its standard deviation, then
# scale by the gain $g$ and shift by the bias $b$ (both learned, one entry per feature):
#
# $$\begin{aligned}
# \mu_t &= \frac1d \sum_j x_{tj}, \\
# \sigma_t^2 &= \frac1d \sum_j (x_{tj} - \mu_t)^2, \\
# y_{tj} &= g_j \, \frac{x_{tj} - \mu_t}{\sqrt{\sigma_t^2 + \epsilon}} + b_j ,
# \end{aligned}$$
#
# with $\epsilon = 10^{-5}$ so that a constant row does not divide by zero. The gain and bias of
# this first norm:

# %%
ln_1 = params["h"][0]["ln_1"]
show(table(np.stack([ln_1["g"], ln_1["b"]]), ["g", "b"], features(4, "d"), "h.0.ln_1 weights"))

# %% [markdown]
# Here are the inner steps, computed with NumPy from the trace's input `embed.out`. The last
# table is what the model computed, `h.0.ln_1`; the printed difference shows the two agree.

# %%
x = trace["embed.out"]
mean = x.mean(axis=-1, keepdims=True)
var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
normalised = (x - mean) / np.sqrt(var + config.norm_eps)
scaled = normalised * ln_1["g"] + ln_1["b"]
show(
    table(np.hstack([mean, var]), POS, ["mean", "variance"], "per-row statistics", digits=4),
    table(normalised, POS, features(4, "d"), "normalised"),
    table(scaled, POS, features(4, "d"), "scaled and shifted = h.0.ln_1"),
)
print("largest difference from trace['h.0.ln_1']:", np.abs(scaled - trace["h.0.ln_1"]).max())
print(
    "each normalised row has mean ~0 and variance ~1:",
    normalised.mean(-1).round(6),
    normalised.var(-1).round(4),
)


# %% nbgrader={"grade": false, "grade_id": "toy_layer_norm-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def toy_layer_norm(x, g, b, eps):
    """LayerNorm of every row of x.

    Task: for each row, subtract its mean, divide by sqrt(variance + eps) (the variance divides
        by d, not d - 1), multiply by g and add b.
    Shapes: x (T, d); g, b (d,); eps, a float -> (T, d), same dtype as x
    Example: toy_layer_norm(trace["embed.out"], ln_1["g"], ln_1["b"], 1e-5) is h.0.ln_1.
    Hints: x.mean(axis=-1, keepdims=True) keeps a (T, 1) column that broadcasts against x.
        One visible check uses eps = 0.5, so where eps goes matters.
    """
    ### BEGIN SOLUTION
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "toy_layer_norm", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("05-worked-toy/toy_layer_norm", toy_layer_norm)

# %% [markdown]
# ## Station 3: queries, keys and values, per head
#
# One matrix `c_attn` of shape $(d, 3d)$ makes all three projections at once
# {cite}`vaswani2017attention`: its first $d$ columns give the queries, the next $d$ the keys, the
# last $d$ the values. Each is then cut into $h = 2$ heads of $d_\text{head} = 2$ consecutive
# columns. Here is the matrix, split the same way:

# %%
attn = params["h"][0]["attn"]
W, B = attn["c_attn"]["w"], attn["c_attn"]["b"]
parts = []
for p, name in enumerate("QKV"):
    for head in range(config.n_head):
        cols = slice(p * 4 + 2 * head, p * 4 + 2 * head + 2)
        parts.append(
            table(
                np.vstack([W[:, cols], B[cols]]),
                features(4, "d") + ["bias"],
                ["0", "1"],
                f"W_{name}, head {head}",
                digits=1,
            )
        )
show(*parts)

# %% [markdown]
# Multiplying the normalised stream by these gives, for each head $h$,
# $Q^{(h)} = y\,W_Q^{(h)} + b_Q^{(h)}$ and likewise $K^{(h)}$ and $V^{(h)}$, each of shape
# $(T, d_\text{head})$. The trace keeps them stacked by head, `(n_head, T, d_head)`:

# %%
show(
    *[
        table(trace[f"h.0.attn.{n}"][head], POS, ["0", "1"], f"h.0.attn.{n}[{head}]")
        for head in range(2)
        for n in "qkv"
    ]
)


# %% nbgrader={"grade": false, "grade_id": "toy_qkv-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def toy_qkv(x, w, b, n_head):
    """Queries, keys and values of every head, stacked.

    Task: compute x @ w + b, cut its 3d columns into q, k, v (d columns each), split each into
        n_head heads of d_head = d // n_head consecutive columns, and stack the three.
    Shapes: x (T, d); w (d, 3d); b (3d,) -> (3, n_head, T, d_head): [q, k, v], each head-major
    Example: toy_qkv(trace["h.0.ln_1"], W, B, 2)[1, 0] is the table h.0.attn.k[0] above.
    Hints: np.split(a, 3, axis=-1) cuts the columns; a (T, d) array becomes (n_head, T, d_head)
        with .reshape(T, n_head, d_head) then .transpose(1, 0, 2) (a reshape alone would give
        each head whole tokens instead of columns).
    """
    ### BEGIN SOLUTION
    T, d = x.shape
    q, k, v = np.split(x @ w + b, 3, axis=-1)
    return np.stack([t.reshape(T, n_head, d // n_head).transpose(1, 0, 2) for t in (q, k, v)])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "toy_qkv", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("05-worked-toy/toy_qkv", toy_qkv)

# %% [markdown]
# ## Station 4: attention scores, four ways
#
# Each head compares every query with every key by a dot product. With $T = 2$ that is a
# $2 \times 2$ table per head, rows for queries, columns for keys:
#
# 1. **raw**: $S = Q K^\top$;
# 2. **scaled**: divided by $\sqrt{d_\text{head}} = \sqrt 2$, so that the size of the scores does
#    not grow with the head's width;
# 3. **masked**: a query may not look at later keys, so the scores above the diagonal become
#    $-\infty$ (this is the **causal mask**);
# 4. **softmaxed**: each row becomes a probability distribution over the keys it may see,
#    $A_{tj} = e^{S_{tj}} / \sum_{j'} e^{S_{tj'}}$, and $e^{-\infty} = 0$.

# %%
KEYS = [f"key {t}: {TOKENS[i]}" for t, i in enumerate(inputs)]
for head in range(config.n_head):
    show(
        *[
            table(trace[f"h.0.attn.{s}"][head], POS, KEYS, f"h.0.attn.{s}[{head}]")
            for s in ("scores_raw", "scores_scaled", "scores_masked", "probs")
        ]
    )

# %% [markdown]
# The first row of every head is forced: "AI" can only look at itself, so its weight on itself is
# exactly one. The second row is where the heads make a choice, and they do not make the same
# one:

# %%
probs_att = trace["h.0.attn.probs"]
for head in range(config.n_head):
    w_ai, w_rocks = probs_att[head, 1]
    print(f"head {head}: 'rocks' puts {w_ai:.3f} of its attention on 'AI' and {w_rocks:.3f} on itself")

# %% tags=["hide-input"] mystnb={"image": {"alt": "Two small heatmaps of attention weights, one per head, queries down and keys across, each cell labelled with its weight; the upper-right cell is zero in both because of the causal mask, and the second row differs between the heads."}}
if not GRADING:
    fig, axes = plt.subplots(1, 2, figsize=(5.5, 2.9))
    for head, ax in enumerate(axes):
        image = ax.imshow(probs_att[head], cmap="Blues", vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(probs_att[head]):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", color="white" if v > 0.6 else "black")
        ax.set_xticks(range(T), [TOKENS[i] for i in inputs])
        ax.set_yticks(range(T), [TOKENS[i] for i in inputs])
        ax.set_xlabel("key")
        ax.set_title(f"head {head}")
    axes[0].set_ylabel("query")
    fig.suptitle("h.0.attn.probs: who each token attends to")
    fig.tight_layout()
    fig.colorbar(image, ax=axes, fraction=0.04, label="weight")
    plt.show()


# %% nbgrader={"grade": false, "grade_id": "toy_attention_probs-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def toy_attention_probs(q, k):
    """Causal attention weights of every head.

    Task: scores q k^T, divided by sqrt(d_head); scores of keys after the query (column j > row i)
        set to -inf; then a softmax over the keys (each row sums to 1).
    Shapes: q, k (n_head, T, d_head) -> (n_head, T, T), same dtype as q
    Example: toy_attention_probs(trace["h.0.attn.q"], trace["h.0.attn.k"]) is h.0.attn.probs.
    Hints: k.swapaxes(-1, -2) transposes each head; divide by math.sqrt(d_head) (a Python float
        keeps float32 inputs float32); np.tri(T, dtype=bool) is True where a query may look; subtract each row's maximum before np.exp (e^-inf = 0 is fine, -inf - -inf is not:
        the diagonal is never masked, so each row's maximum is finite).
    """
    ### BEGIN SOLUTION
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])
    T = q.shape[-2]
    scores = np.where(np.tri(T, dtype=bool), scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(q.dtype)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "toy_attention_probs", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("05-worked-toy/toy_attention_probs", toy_attention_probs)

# %% [markdown]
# **Concept check.** In head 0, suppose "AI" and "rocks" had exactly the same key vector, with
# everything else unchanged. What would the attention weights of query 1 ("rocks") be?
#
# - (a) $[1, 0]$: a tie goes to the first key
# - (b) $[0.5, 0.5]$, whatever the query vector is
# - (c) the same as now: the weights depend on the query only
# - (d) $[0, 1]$: a token prefers itself

# %% nbgrader={"grade": false, "grade_id": "q_equal_keys-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_equal_keys = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_equal_keys = "b"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_equal_keys", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("05-worked-toy/q_equal_keys", answer_q_equal_keys)

# %% [markdown]
# ## Station 5: each head's output, the merge, the projection, the first residual
#
# Each head's output is its weights times its values, $A^{(h)} V^{(h)}$: row $t$ is a weighted
# average of the value rows that query $t$ may see. The two heads' outputs are put side by side
# (head 0's two columns, then head 1's) to make a $(T, d)$ array again, `merged`, and the output
# projection $W_O$ (`c_proj`) mixes the heads:
#
# $$\text{attn}(y) = \big[A^{(0)} V^{(0)} \;\big|\; A^{(1)} V^{(1)}\big]\, W_O + b_O .$$

# %%
show(
    table(
        np.vstack([attn["c_proj"]["w"], attn["c_proj"]["b"]]),
        features(4, "merged ") + ["bias"],
        features(4, "d"),
        "c_proj: W_O and b_O",
        digits=1,
    ),
    *[table(trace["h.0.attn.heads"][head], POS, ["0", "1"], f"h.0.attn.heads[{head}]") for head in range(2)],
    table(trace["h.0.attn.merged"], POS, features(4), "h.0.attn.merged"),
    table(trace["h.0.attn.out"], POS, features(4, "d"), "h.0.attn.out"),
)

# %% [markdown]
# Attention does not replace the stream; it *adds* to it. The **residual connection** gives the
# stream after the first sublayer, $x + \text{attn}(\text{LN}_1(x))$:

# %%
show(
    table(trace["embed.out"], POS, features(4, "d"), "embed.out"),
    table(trace["h.0.attn.out"], POS, features(4, "d"), "+ h.0.attn.out"),
    table(trace["h.0.resid_mid"], POS, features(4, "d"), "= h.0.resid_mid"),
)


# %% nbgrader={"grade": false, "grade_id": "toy_attention_output-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def toy_attention_output(probs, v, w, b):
    """From attention weights and values to the sublayer's output.

    Task: each head's output probs[h] @ v[h]; put the heads side by side (head 0's d_head
        columns first) into a (T, d) array; apply the output projection, @ w + b.
    Shapes: probs (n_head, T, T); v (n_head, T, d_head); w (d, d); b (d,) -> (T, d)
    Example: toy_attention_output(trace["h.0.attn.probs"], trace["h.0.attn.v"],
        attn["c_proj"]["w"], attn["c_proj"]["b"]) is h.0.attn.out.
    Hints: (n_head, T, d_head) -> (T, n_head, d_head) with .transpose(1, 0, 2), then
        .reshape(T, d); a reshape alone would mix tokens up.
    """
    ### BEGIN SOLUTION
    heads = probs @ v  # [H, T, d_head]
    H, T, d_head = heads.shape
    merged = heads.transpose(1, 0, 2).reshape(T, H * d_head)
    return merged @ w + b
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "toy_attention_output", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("05-worked-toy/toy_attention_output", toy_attention_output)

# %% [markdown]
# ## Station 6: LayerNorm 2 and the MLP
#
# The second sublayer works on each position alone. It normalises the stream again (its own gain
# and bias), expands each row to $d_\text{ff} = 16$ features, applies GELU
# {cite}`hendrycks2016gelu` to each of them, and projects back to $d$:
#
# $$\begin{aligned}
# \text{mlp}(y) &= h\,W_\text{proj} + b_\text{proj}, \\
# h &= \text{GELU}(y\,W_\text{fc} + b_\text{fc}), \\
# \text{GELU}(u) &\approx \tfrac12 u \big(1 + \tanh v\big), \\
# v &= \sqrt{2/\pi}\,(u + 0.044715\,u^3).
# \end{aligned}$$
#
# GPT-2 uses this tanh approximation of $u\,\Phi(u)$. The weights (the projection is shown
# transposed, so that both are 4 rows of 16):

# %%
mlp_w = params["h"][0]["mlp"]
ln_2 = params["h"][0]["ln_2"]
show(table(np.stack([ln_2["g"], ln_2["b"]]), ["g", "b"], features(4, "d"), "h.0.ln_2 weights"))
show(
    table(
        np.vstack([mlp_w["c_fc"]["w"], mlp_w["c_fc"]["b"]]),
        features(4, "d") + ["bias"],
        features(16),
        "mlp.c_fc: W_fc and b_fc",
        digits=1,
    ),
    table(mlp_w["c_proj"]["w"].T, features(4, "d"), features(16), "mlp.c_proj: W_proj transposed", digits=1),
    table(mlp_w["c_proj"]["b"], ["b_proj"], features(4, "d"), "mlp.c_proj bias", digits=1),
)

# %% [markdown]
# The stations, for both positions (the hidden layer has 16 columns):

# %%
show(table(trace["h.0.ln_2"], POS, features(4, "d"), "h.0.ln_2"))
show(table(trace["h.0.mlp.pre_act"], POS, features(16), "h.0.mlp.pre_act", digits=2))
show(table(trace["h.0.mlp.post_act"], POS, features(16), "h.0.mlp.post_act", digits=2))
show(
    table(trace["h.0.mlp.out"], POS, features(4, "d"), "h.0.mlp.out"),
    table(trace["h.0.resid_post"], POS, features(4, "d"), "h.0.resid_post = resid_mid + mlp.out"),
)

# %% [markdown]
# GELU lets positive values through almost unchanged and squashes negative ones towards zero,
# smoothly, with a small dip below zero. Here are the 32 hidden values of the two positions on the
# curve:

# %% tags=["hide-input"] mystnb={"image": {"alt": "The GELU curve from -3 to 3 with the toy's 32 MLP pre-activations marked as dots on it, coloured by position; negative inputs land near zero, positive ones near the diagonal."}}
if not GRADING:
    u = np.linspace(-3, 3, 200)
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(u, lib.gelu(u), color="0.3", lw=1.2, label="GELU (tanh)")
    ax.plot(u, np.maximum(u, 0), color="0.7", lw=0.8, ls=":", label="ReLU, for comparison")
    for t in range(T):
        pre, post = trace["h.0.mlp.pre_act"][t], trace["h.0.mlp.post_act"][t]
        ax.scatter(pre, post, s=22, zorder=3, label=f"position {POS[t]}")
    ax.set_xlabel("h.0.mlp.pre_act")
    ax.set_ylabel("h.0.mlp.post_act")
    ax.legend()
    ax.set_title("The MLP's hidden values on the GELU curve")
    fig.tight_layout()
    plt.show()


# %% nbgrader={"grade": false, "grade_id": "toy_mlp-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def toy_mlp(x, w_fc, b_fc, w_proj, b_proj):
    """GPT-2's MLP on every row of x.

    Task: gelu(x @ w_fc + b_fc) @ w_proj + b_proj, with the tanh GELU
        0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))).
    Shapes: x (T, d); w_fc (d, d_ff); b_fc (d_ff,); w_proj (d_ff, d); b_proj (d,) -> (T, d)
    Example: toy_mlp(trace["h.0.ln_2"], mlp_w["c_fc"]["w"], mlp_w["c_fc"]["b"],
        mlp_w["c_proj"]["w"], mlp_w["c_proj"]["b"]) is h.0.mlp.out.
    Hints: np.tanh; u**3 is the cube. Write the constant as math.sqrt(2 / math.pi), a Python
        float: np.sqrt(2 / np.pi) is a float64 NumPy scalar, which turns a float32 array into
        float64 under NumPy 2's rules, and the check insists on the input's dtype.
    """
    ### BEGIN SOLUTION
    u = x @ w_fc + b_fc
    hidden = 0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))
    return hidden @ w_proj + b_proj
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "toy_mlp", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("05-worked-toy/toy_mlp", toy_mlp)

# %% [markdown]
# ## Station 7: the final norm, the logits and the probabilities
#
# After the last block (here the only one), the stream is normalised once more, by `ln_f`, and
# the LM head turns each row into one score per vocabulary token. The head is **tied**
# {cite}`press2017using`: it is the token embedding matrix, transposed, so the logit of token $v$
# is the dot product of the final row with token $v$'s own embedding $E_v$:
#
# $$\begin{aligned}
# \text{logits}_t &= \text{LN}_f(x_t)\, E^\top, \\
# p_t &= \operatorname{softmax}(\text{logits}_t).
# \end{aligned}$$

# %%
ln_f = params["ln_f"]
probs = lib.softmax(trace["logits"], axis=-1)
show(
    table(np.stack([ln_f["g"], ln_f["b"]]), ["g", "b"], features(4, "d"), "ln_f weights", digits=1),
    table(trace["ln_f"], POS, features(4, "d"), "ln_f"),
    table(params["wte"].T, features(4, "d"), TOKENS, "wte.T: the LM head", digits=1),
)
show(table(trace["logits"], POS, TOKENS, "logits"), table(probs, POS, TOKENS, "softmax(logits)"))
for t in range(T):
    print(
        f"after {' '.join(TOKENS[i] for i in inputs[: t + 1])!r:12} the model predicts {TOKENS[probs[t].argmax()]!r} with p = {probs[t].max():.3f}"
    )

# %% tags=["hide-input"] mystnb={"image": {"alt": "Two bar charts of next-token probabilities over AI, rocks and <eos>: after AI the tallest bar is rocks, after AI rocks the tallest bar is <eos>; the target token's bar is green."}}
if not GRADING:
    fig, axes = plt.subplots(1, 2, figsize=(5.5, 2.8), sharey=True)
    for t, ax in enumerate(axes):
        colours = ["tab:green" if i == targets[t] else "tab:gray" for i in range(3)]
        ax.bar(TOKENS, probs[t], color=colours)
        ax.set_title(f"after {' '.join(TOKENS[i] for i in inputs[: t + 1])!r}")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("probability")
    fig.suptitle("Next-token probabilities (green: the target)")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# **Concept check.** Add $1.0$ to all four numbers of the `embed.out` row of position 0 and run the
# rest of the pass unchanged. Which station values change?
#
# - (a) Every station from `embed.out` on, at position 0, and so the prediction after "AI".
# - (b) Only stations at position 1, through attention.
# - (c) Nothing at all: a LayerNorm comes first and undoes the change.
# - (d) Only the residual stream at position 0 (`embed.out`, `h.0.resid_mid`, `h.0.resid_post`);
#   the logits stay exactly the same.

# %% nbgrader={"grade": false, "grade_id": "q_ln_shift-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_ln_shift = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_ln_shift = "d"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_ln_shift", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("05-worked-toy/q_ln_shift", answer_q_ln_shift)

# %% [markdown]
# ## Station 8: the loss
#
# Training scores the model with the **cross-entropy**: at each position, minus the log of the
# probability it gave to the target, averaged over the positions,
#
# $$\mathcal{L} = -\frac1T \sum_{t} \log p_t(\text{target}_t).$$
#
# A model that is sure and right pays nothing; one that gives the target a small probability pays a
# lot. Here are both positions:

# %%
picked = probs[np.arange(T), targets]
show(
    table(
        np.stack([picked, -np.log(picked)], axis=1),
        [f"{POS[t]} -> {TOKENS[targets[t]]}" for t in range(T)],
        ["p(target)", "-log p"],
        "per position",
        digits=4,
    )
)
loss = lib.cross_entropy(trace["logits"], targets)
print(f"loss = mean of -log p = {loss:.4f} nats (lib.cross_entropy)")
print(
    f"perplexity = exp(loss) = {lib.perplexity(loss):.4f}; a uniform guess over 3 tokens has loss ln 3 = {np.log(3):.4f}"
)


# %% nbgrader={"grade": false, "grade_id": "toy_loss-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def toy_loss(logits, targets):
    """Mean cross-entropy of the targets under the logits, in nats.

    Task: turn each row of logits into log-probabilities (a log-softmax over the vocabulary),
        pick the log-probability of each target, and return minus their mean, as a float.
    Shapes: logits (..., T, V); targets, int (..., T) -> a float
    Example: toy_loss(trace["logits"], np.array([1, 2])) is the loss printed above.
    Hints: log_softmax(z) = z - max(z) - log(sum(exp(z - max(z)))), over the last axis;
        np.take_along_axis(logp, targets[..., None], axis=-1) picks one entry per row.
    """
    ### BEGIN SOLUTION
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-np.take_along_axis(logp, targets[..., None], axis=-1).mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "toy_loss", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("05-worked-toy/toy_loss", toy_loss)

# %% [markdown]
# ## The whole pass, in your own code
#
# You now have every station. Put them together: one function from token ids and the weights (in
# `lib`'s layout, the dictionary `params` above) to the logits. When the logits differ, the check
# runs your helpers on the trace's inputs and names the first station where they disagree.


# %% nbgrader={"grade": false, "grade_id": "toy_forward-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def toy_forward(ids, params):
    """The toy's whole forward pass: token ids to logits.

    Task: embed; x = x + attention(LayerNorm 1(x)); x = x + MLP(LayerNorm 2(x)); final LayerNorm;
        logits with the tied head wte.T. Attention has 2 heads and the causal mask; eps = 1e-5.
    Shapes: ids, int (T,); params, lib's nested dict -> logits (T, V)
    Example: toy_forward(inputs, params) is trace["logits"] (and toy.forward(inputs)).
    Hints: use your toy_embed, toy_layer_norm, toy_qkv, toy_attention_probs,
        toy_attention_output and toy_mlp. The block's weights are params["h"][0]: "ln_1",
        "attn" (with "c_attn" and "c_proj", each {"w", "b"}), "ln_2", "mlp" ("c_fc", "c_proj");
        the final norm is params["ln_f"].
    """
    ### BEGIN SOLUTION
    layer = params["h"][0]
    x = toy_embed(ids, params["wte"], params["wpe"])
    h = toy_layer_norm(x, layer["ln_1"]["g"], layer["ln_1"]["b"], 1e-5)
    q, k, v = toy_qkv(h, layer["attn"]["c_attn"]["w"], layer["attn"]["c_attn"]["b"], 2)
    a = toy_attention_probs(q, k)
    x = x + toy_attention_output(a, v, layer["attn"]["c_proj"]["w"], layer["attn"]["c_proj"]["b"])
    h = toy_layer_norm(x, layer["ln_2"]["g"], layer["ln_2"]["b"], 1e-5)
    m = layer["mlp"]
    x = x + toy_mlp(h, m["c_fc"]["w"], m["c_fc"]["b"], m["c_proj"]["w"], m["c_proj"]["b"])
    x = toy_layer_norm(x, params["ln_f"]["g"], params["ln_f"]["b"], 1e-5)
    return x @ params["wte"].T
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "toy_forward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check(
    "05-worked-toy/toy_forward",
    toy_forward,
    toy_embed=toy_embed,
    toy_layer_norm=toy_layer_norm,
    toy_qkv=toy_qkv,
    toy_attention_probs=toy_attention_probs,
    toy_attention_output=toy_attention_output,
    toy_mlp=toy_mlp,
)

# %% [markdown]
# ## Step through it
#
# Pick an input (any sequence of up to $n_\text{ctx} = 4$ tokens) and move the slider through the
# stations: the table is that station's value in `lib`'s trace, with its name and shape. Compare
# "AI rocks" with "AI `<eos>`": which rows change, and from which station on? On the web page
# every input and station was computed when the book was built.

# %% tags=["hide-input"]
STATION_NOTES = {
    "embed.tok": "row ids[t] of wte",
    "embed.pos": "row t of wpe",
    "embed.out": "the stream entering the block",
    "h.0.ln_1": "LayerNorm 1 of the stream",
    "h.0.attn.q": "queries, per head",
    "h.0.attn.k": "keys, per head",
    "h.0.attn.v": "values, per head",
    "h.0.attn.scores_raw": "q k^T, per head",
    "h.0.attn.scores_scaled": "divided by sqrt(d_head)",
    "h.0.attn.scores_masked": "future keys set to -inf",
    "h.0.attn.probs": "softmax over keys",
    "h.0.attn.heads": "probs @ v, per head",
    "h.0.attn.merged": "heads side by side",
    "h.0.attn.out": "after the output projection",
    "h.0.resid_mid": "stream + attention",
    "h.0.ln_2": "LayerNorm 2",
    "h.0.mlp.pre_act": "before GELU",
    "h.0.mlp.post_act": "after GELU",
    "h.0.mlp.out": "after the MLP's projection",
    "h.0.resid_post": "stream + MLP",
    "ln_f": "final LayerNorm",
    "logits": "ln_f @ wte.T",
    "probs": "softmax of the logits (not a trace entry: computed from logits)",
}


def station_title(sentence, name):
    shape = STATION_SHAPES[sentence, name]
    return f"{name} for '{sentence}', shape {shape}: {STATION_NOTES[name]}"


def station_tables(sentence, name):
    """The HTML tables of one station of one input, from lib's trace."""
    seq = toy.tokenizer.encode(sentence)
    _, tr = toy.forward(seq, trace=True)
    tr["probs"] = lib.softmax(tr["logits"], axis=-1)
    value = tr[name]
    rows = [f"{t}: {TOKENS[i]}" for t, i in enumerate(seq)]
    cols = TOKENS if name in ("logits", "probs") else features(value.shape[-1])
    if value.ndim == 3:  # one table per head
        cols = rows if "scores" in name or "probs" in name else cols
        parts = [table(value[h], rows, cols, f"{name}[{h}]") for h in range(value.shape[0])]
    else:
        parts = [table(value, rows, cols, name)]
    return '<div style="display:flex;flex-wrap:wrap;gap:1em 2em">' + "".join(parts) + "</div>"


SENTENCES = ["AI rocks", "AI <eos>", "rocks AI", "AI AI rocks", "AI rocks <eos> AI"]
STATION_SHAPES = {}
for sentence in SENTENCES:
    _, station_trace = toy.forward(toy.tokenizer.encode(sentence), trace=True)
    for name in STATION_NOTES:
        value = station_trace["logits"] if name == "probs" else station_trace[name]
        STATION_SHAPES[sentence, name] = value.shape


def show_station(sentence, name):
    display(
        HTML(
            f"<p><strong>{escape(station_title(sentence, name))}</strong></p>"
            + station_tables(sentence, name)
        )
    )


def station_state(sentence, name):
    return bookkit.State(station_title(sentence, name), [bookkit.Html(station_tables(sentence, name))])


if not GRADING:
    bookkit.explore(
        [
            bookkit.Select("sentence", [(x, x) for x in SENTENCES], label="input"),
            bookkit.Slider("name", list(STATION_NOTES), value="embed.out", label="station"),
        ],
        live=show_station,
        static=station_state,
    )

# %% [markdown]
# ## Break it
#
# Each design choice of the block is there for a reason. Below, the same weights run through three
# broken versions of the block, built from `lib`'s stage functions, and the table compares their
# next-token probabilities with the real model's:
#
# - **no mask**: every token may attend to every other, including later ones;
# - **no residual**: each sublayer's output *replaces* the stream instead of being added to it;
# - **MLP first**: the two sublayers swapped, each keeping its own norm and weights.


# %%
def forward_variant(ids, params, *, mask=True, residual=True, order=("attn", "mlp")):
    """The toy's forward pass with one design choice changed, from lib's stage functions."""
    layer = params["h"][0]
    x = lib.embed(ids, params["wte"], params["wpe"])  # [T, d]

    def attention(h):
        qkv = lib.linear(h, layer["attn"]["c_attn"]["w"], layer["attn"]["c_attn"]["b"])
        q, k, v = (lib.split_heads(t, config.n_head) for t in np.split(qkv, 3, axis=-1))
        allowed = lib.causal_mask(len(ids)) if mask else None  # None: no mask at all
        heads = lib.scaled_dot_product_attention(q, k, v, allowed)
        return lib.linear(lib.merge_heads(heads), layer["attn"]["c_proj"]["w"], layer["attn"]["c_proj"]["b"])

    sublayers = {
        "attn": (attention, layer["ln_1"]),
        "mlp": (lambda h: lib.mlp(h, layer["mlp"]), layer["ln_2"]),
    }
    for name in order:
        f, norm = sublayers[name]
        out = f(lib.layer_norm(x, norm["g"], norm["b"], config.norm_eps))
        x = x + out if residual else out
    x = lib.layer_norm(x, params["ln_f"]["g"], params["ln_f"]["b"], config.norm_eps)
    return lib.lm_head(x, params["wte"].T)


VARIANTS = {
    "the real block": {},
    "no mask": {"mask": False},
    "no residual": {"residual": False},
    "MLP first": {"order": ("mlp", "attn")},
}
variant_probs = {
    name: lib.softmax(forward_variant(inputs, params, **kw), axis=-1) for name, kw in VARIANTS.items()
}
assert np.allclose(variant_probs["the real block"], probs, atol=1e-6)  # the unbroken version is the model
rows, values = [], []
for name, p in variant_probs.items():
    for t in range(T):
        rows.append(f"{name}, after {TOKENS[inputs[t]]!r}")
        values.append(list(p[t]) + [-np.log(p[t, targets[t]])])
show(
    table(
        np.array(values),
        rows,
        [f"p({tok})" for tok in TOKENS] + ["-log p(target)"],
        "next-token probabilities",
        digits=3,
    )
)
for name, p in variant_probs.items():
    loss_v = -np.log(p[np.arange(T), targets]).mean()
    print(f"{name:15} predicts {[TOKENS[i] for i in p.argmax(-1)]}, loss {loss_v:.3f}")

# %% tags=["hide-input"] mystnb={"image": {"alt": "Grouped bar chart: for the real block and three broken versions (no mask, no residual, MLP first), the probability each gives to the correct next token at position 0 and at position 1."}}
if not GRADING:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    names = list(variant_probs)
    for t in range(T):
        p_target = [variant_probs[n][t, targets[t]] for n in names]
        ax.bar(
            np.arange(len(names)) + (t - 0.5) * 0.38,
            p_target,
            width=0.38,
            label=f"p({TOKENS[targets[t]]!r} | {' '.join(TOKENS[i] for i in inputs[: t + 1])!r})",
        )
    ax.set_xticks(range(len(names)), [n.replace(" ", "\n", 1) for n in names])
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("p(target)")
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title("Break one thing, same weights")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# What each break does:
#
# - **No mask** changes position 0's probabilities even though position 0's own input is the
#   same: "AI" now also reads "rocks", the very token it is supposed to predict. During training
#   that is cheating (compare the losses), and at generation time the next token does not exist
#   yet, so a model trained without the mask would learn to depend on information it will never
#   have. Position 1
#   was already allowed to see everything before it and has nothing after it, so its row does not
#   change.
# - **No residual** throws away the stream each sublayer reads. The MLP then sees only what
#   attention wrote, not the embeddings, and the LM head sees only what the MLP wrote. These weights
#   were chosen for a block that adds, and a real model trained without residuals is also far
#   harder to train, since every layer must pass everything on explicitly
#   {cite}`elhage2021mathematical`.
# - **MLP first** feeds the MLP tokens that have not yet been mixed with anything, and attention
#   then mixes the MLP's output. The same weights compute a different function: the order of the
#   sublayers is part of the model, not a detail.

# %% [markdown]
# ## Summary
#
# - One forward pass of a GPT-2-style model is a fixed list of stations, each a small computation
#   on a $(T, d)$ array (or one array per head): embeddings, LayerNorm, per-head $Q, K, V$, scores
#   (raw, scaled, masked, softmaxed), head outputs, merge and projection, residual, LayerNorm, MLP
#   (hidden layer before and after GELU), residual, final norm, logits, probabilities.
# - The causal mask makes position $t$'s numbers depend only on tokens $0..t$: that is what lets one
#   pass over a sequence score every next-token prediction at once, with targets equal to the input
#   shifted by one.
# - The cross-entropy averages $-\log p(\text{target})$ over the positions; a uniform guess over
#   $V$ tokens scores $\ln V$.
#
# The next chapter counts what all this costs for a real model: how many weights, how many
# floating-point operations per token, and how much memory the keys and values take.
