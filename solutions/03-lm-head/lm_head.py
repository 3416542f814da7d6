# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The LM head: from a vector to a distribution
#
# :::{admonition} In this chapter
# :class: note
# - **You will be able to** turn the last block's output into logits and probabilities, compute a
#   softmax and a log-softmax that never overflow, score a text with its cross-entropy and
#   perplexity, and read a prediction forming inside the model with the logit lens.
# - **It assumes** chapters 1 and 2 (the final stream, tied embeddings, LayerNorm), and logarithms
#   and exponentials.
# - **Time:** about 1.5 hours: 40 minutes of reading, 50 minutes for five exercises and three
#   questions.
# :::
#
# The blocks of the previous chapter leave one vector of width $d$ at every position: the
# residual stream. A language model must turn that vector into something it can be judged on: a
# probability for every token of the vocabulary, $V$ numbers that sum to one. This chapter builds
# that last stage and the numbers we use to judge it:
#
# 1. the **final norm**, which puts the stream on a common scale;
# 2. the **unembedding** (the LM head proper), a matrix of shape $(d, V)$ that scores every token,
#    often the token embedding matrix itself, transposed;
# 3. the **softmax**, which turns scores (logits) into probabilities, and how to compute it without
#    overflowing;
# 4. the **cross-entropy** of a text and its **perplexity**, the model's training objective and its
#    most quoted score;
# 5. the **logit lens**, which applies the head to the stream *inside* the model to watch a
#    prediction take shape.
#
# | step | shape |
# |---|---|
# | stream leaving the last block | $(T, d)$ |
# | final norm | $(T, d)$ |
# | logits $= \mathrm{LN}(x)\,W_U$ | $(T, V)$ |
# | probabilities $= \mathrm{softmax}(\text{logits})$ | $(T, V)$, each row sums to 1 |
# | loss | a single number |
#
# <!-- class only -->
# Before you submit, restart the kernel and run every cell, then run `nbgrader validate
# lm_head.ipynb` in a terminal in this folder (or the **Validate** button of JupyterLab's assignment
# list): it runs the notebook from a fresh kernel, as the grader does, and prints every check that
# fails with its whole message.
# <!-- end class only -->
# <!-- reader only -->
# Reading on your own, you submit nothing: each check answers at once, ✔ or the mistake it
# recognises, when you run the notebook. In the web book, its place shows what a correct function
# returns on its example, with the solution folded under "Show solution".
# <!-- end reader only -->

# %%
import os
from pathlib import Path

import numpy as np

import lib
from grader.check import check
from lib import layer_norm

GRADING = "NBGRADER_EXECUTION" in os.environ
rng = np.random.default_rng(0)
np.set_printoptions(precision=4, suppress=True)
if not GRADING:  # presentation only: grading neither needs it nor sees it
    import matplotlib.pyplot as plt

    import bookkit

    bookkit.style.use()  # figures as SVG, sized to read on a phone

# %% [markdown]
# Every number on this page comes from the course's shipped model: a small GPT-2-style network
# trained on the plays of Shakespeare, one **character** per token (so $V$ is small, and every
# prediction is a letter, a space, a line break or a punctuation mark).

# %%
model = lib.load_pretrained("shakespeare")
tok = model.tokenizer
V, d = model.config.vocab_size, model.config.d_model
print(model)
print(f"V = {V} tokens, d = {d}, {model.config.n_layer} blocks")


def show(ch):
    """A character as a readable label: line breaks and spaces made visible."""
    return {"\n": "⏎", " ": "␣"}.get(ch, ch)


# %% [markdown]
# ## The final norm
#
# Each block *adds* to the stream (chapter 2), so the stream tends to grow as it goes up the
# stack, and its scale differs from one position to the next. GPT-2 and every model after it
# place one more LayerNorm (`ln_f`) after the last block, so that the head always sees vectors of
# a predictable size {cite}`radford2019language`. Below: the average length of the stream vector
# after the embedding and after each block, then after the final norm.

# %%
prompt = "KING.\nMy lord, I do confess the ring was hers"
ids = tok.encode(prompt)
logits, trace = model.forward(ids, trace=True)

stages = ["embed.out"] + [f"h.{i}.resid_post" for i in range(model.config.n_layer)] + ["ln_f"]
for name in stages:
    print(f"{name:>16}: mean |x| = {np.linalg.norm(trace[name], axis=-1).mean():8.3f}")

# %% [markdown]
# ## Unembedding, and weight tying
#
# The head is one matrix product. Write $\hat x_t = \mathrm{LN}_f(x_t)$ for the normed stream at
# position $t$; its **logits** are
#
# $$
# \begin{aligned}
# z_t &= \hat x_t \, W_U, \qquad W_U \in \mathbb{R}^{d \times V}, \\
# z_{t,v} &= \hat x_t \cdot W_U[:, v],
# \end{aligned}
# $$
#
# one score per token: the dot product of the stream with that token's column of $W_U$. The token
# embedding $E \in \mathbb{R}^{V \times d}$ at the bottom of the model has one *row* per token;
# the head needs one *column* per token. GPT-2 simply reuses the embedding: $W_U = E^\top$. This is
# **weight tying** {cite}`press2017using`: the same vector that says "this is token $v$" on the way
# in is the direction the stream must point in to predict $v$ on the way out. It saves $V d$
# parameters, and tends to help small models. Llama-style models usually keep a separate,
# *untied* $W_U$.
#
# In `lib` a tied head is `x @ wte.T`; `wte.T` is a view of the same memory, not a copy:

# %%
wte = model.params["wte"]
print("tied:", model.config.tie_embeddings)
print("W_U shape:", model.w_unembed.shape, " shares memory with wte:", np.shares_memory(model.w_unembed, wte))
print(f"parameters saved by tying: V * d = {wte.size:,} of {model.num_params():,}")

# %% [markdown]
# ### Exercise: the LM head
#
# Write the head: the final LayerNorm, then the unembedding, tied or not. Use `layer_norm` from
# `lib` (chapter 2's norm, imported in the setup cell) with its default epsilon.


# %% nbgrader={"grade": false, "grade_id": "lm_head-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lm_head(x, ln_f, wte, w_unembed=None):
    """Logits for every position: final LayerNorm, then the unembedding.

    Task: normalise x with the final LayerNorm (gain ln_f["g"], bias ln_f["b"]), then multiply
        by the unembedding. With w_unembed=None the head is tied and the unembedding is wte.T;
        otherwise it is w_unembed.
    Shapes: x (..., d); ln_f {"g": (d,), "b": (d,)}; wte (V, d); w_unembed (d, V) or None
        -> logits (..., V), same dtype as x.
    Example: lm_head(trace["h.3.resid_post"], model.params["ln_f"], model.params["wte"]) gives
        the model's logits, model.forward(ids).
    Hints: layer_norm(x, g, b) is in lib. wte has one ROW per token; the logit of token v is the
        dot product of the normed x with row v. Return logits, not probabilities.
    """
    ### BEGIN SOLUTION
    x = layer_norm(x, ln_f["g"], ln_f["b"])
    return x @ (wte.T if w_unembed is None else w_unembed)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "lm_head", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("03-lm-head/lm_head", lm_head)

# %% [markdown]
# The head is the last step of `model.forward`: applied to the stream leaving the last block, it
# reproduces the model's logits exactly (computed here with `lib`'s own functions):

# %%
last = trace[f"h.{model.config.n_layer - 1}.resid_post"]
ours = lib.lm_head(lib.norm(last, model.params["ln_f"], model.config), model.w_unembed)
print("same logits as model.forward:", np.allclose(ours, logits, atol=1e-5))

# %% [markdown]
# ## Which position predicts what
#
# The logits have one row per *input* position. Because of the causal mask, row $t$ was computed
# from tokens $0, \dots, t$ only, so it is the model's guess for token $t+1$. Two uses follow:
#
# - **Generation** needs only the last row: it is the only one whose next token we do not know
#   yet. `lib.Engine(model).prefill(ids)`, the fast path generation runs on, skips the head
#   everywhere else, and most of the last block too: there, only the keys and values are needed
#   at every position.
# - **Training** uses every row at once: the text itself supplies the answer for rows
#   $0, \dots, T-2$, so one forward pass scores $T-1$ predictions (teacher forcing). The last row
#   has no target inside the text.
#
# **Concept check.** `ids = tok.encode("KING.\nMy lord")` holds 13 tokens, and
# `logits = model.forward(ids)` has shape $(13, V)$. Which row is the model's prediction for the
# character that comes right after "KING."?
#
# - (a) row 5, the line break that follows "KING."
# - (b) row 12, the last one: only the last row predicts anything
# - (c) row 4, the full stop
# - (d) row 0, the only row that sees the start of the text

# %% nbgrader={"grade": false, "grade_id": "q_next_row-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_next_row = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_next_row = "c"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_next_row", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("03-lm-head/q_next_row", answer_q_next_row)

# %% [markdown]
# Here are the first rows of our prompt, and `last_only`, which computes the last row alone:

# %%
only_last = lib.Engine(model).prefill(ids)
print("full logits:", logits.shape, " prefill:", only_last.shape)
print("the last rows agree:", np.allclose(logits[-1], only_last, atol=1e-5))
for t in range(3):
    guess = tok.decode(np.array([np.argmax(logits[t])]))
    print(
        f"row {t} has seen {prompt[: t + 1]!r}: it predicts token {t + 1}, {prompt[t + 1]!r} (top guess {guess!r})"
    )

# %% [markdown]
# ## Logits and the next token
#
# Logits are unbounded scores; only their differences matter. The softmax turns them into
# probabilities:
#
# $$
# p_v = \mathrm{softmax}(z)_v = \frac{e^{z_v}}{\sum_{u=1}^{V} e^{z_u}} .
# $$
#
# Here are the ten most likely next characters after our prompt:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Bar chart of the ten most probable next characters after the prompt, with their probabilities under the shipped Shakespeare model."}}
if not GRADING:
    probs = lib.softmax(logits[-1])
    top = np.argsort(-probs, kind="stable")[:10]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.bar(range(10), probs[top], color="tab:blue")
    ax.set_xticks(range(10), [show(tok.decode(np.array([i]))) for i in top])
    ax.set_ylabel("probability")
    ax.set_title(f"next character after {prompt[-20:]!r}")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# In the web book, the same ten bars for a prompt of your own, computed in the page as you type:
#
# <div class="fp-live" data-prompt="To be, or not to be" data-parts="next">
# <p><em>The live model runs here in the web book served over http (<code>make serve</code>); opened from disk, or in a notebook, the page shows this line instead.</em></p>
# </div>

# %% [markdown]
# **Concept check.** Suppose the model had no final norm, and at some position the stream leaving
# the last block pointed in its usual direction but was twice as long. Compared with the usual
# length, the next-token distribution at that position would be
#
# - (a) the same, because the softmax normalises whatever it is given
# - (b) flatter, closer to uniform
# - (c) of the same shape, with a different most likely token
# - (d) sharper, with the same most likely token: every logit doubles

# %% nbgrader={"grade": false, "grade_id": "q_final_norm-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_final_norm = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_final_norm = "d"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_final_norm", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("03-lm-head/q_final_norm", answer_q_final_norm)

# %% [markdown]
# ## A softmax that does not overflow
#
# Computed as written, the softmax breaks on large logits. A float32 number cannot exceed about
# $3.4 \times 10^{38}$, so $e^z$ overflows to `inf` once $z$ passes the logarithm of that bound,
# and then `inf / inf` is `nan`:

# %%
print("largest z whose exp fits in float32:", np.log(np.finfo(np.float32).max))
z = np.array([100.0, 101.0, 102.0], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    e = np.exp(z)
    naive = e / e.sum()
print("logits:       ", z, z.dtype)
print("exp(logits):  ", e)
print("naive softmax:", naive)
print("lib.softmax:  ", lib.softmax(z))

# %% [markdown]
# The cure is free: adding the same constant $c$ to every logit multiplies numerator and
# denominator by $e^{c}$, which cancels. Subtracting the largest logit $m = \max_u z_u$ makes every
# exponent at most $0$, so nothing overflows, and the largest term is exactly $e^0 = 1$, so the sum
# cannot underflow to zero either:
#
# $$
# \mathrm{softmax}(z)_v = \frac{e^{z_v - m}}{\sum_u e^{z_u - m}} .
# $$
#
# Logits of $-\infty$ (a masked or filtered token) are fine too: $e^{-\infty} = 0$.

# %% [markdown]
# ### Exercise: a stable softmax


# %% nbgrader={"grade": false, "grade_id": "softmax-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def softmax(x):
    """Numerically stable softmax over the last axis.

    Task: subtract each row's maximum, exponentiate, divide by the row's sum.
    Shapes: x (..., V) -> (..., V), same dtype; every row sums to 1.
    Example: softmax(np.array([1.0, 2.0, 3.0])) equals softmax(np.array([101.0, 102.0, 103.0])),
        and both sum to 1.
    Hints: x.max(axis=-1, keepdims=True) keeps a (..., 1) axis that broadcasts against the rows.
        Without the max subtraction, float32 logits near 90 already overflow.
    """
    ### BEGIN SOLUTION
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "softmax", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("03-lm-head/softmax", softmax)

# %% [markdown]
# The loss needs the *logarithm* of a probability. Taking `np.log(softmax(x))` loses what the
# softmax rounded away: a probability below the smallest float32 becomes $0$, and its log
# $-\infty$, although the true log-probability is an ordinary number. Work in log space instead:
#
# $$
# \begin{aligned}
# \log \mathrm{softmax}(z)_v &= (z_v - m) \\
# &\quad - \log \sum_u e^{z_u - m} .
# \end{aligned}
# $$

# %%
z = np.array([30.0, 0.0, -120.0], dtype=np.float32)
with np.errstate(divide="ignore"):
    print("np.log(softmax):", np.log(lib.softmax(z)))
print("log_softmax:    ", lib.log_softmax(z))

# %% [markdown]
# ### Exercise: log-softmax


# %% nbgrader={"grade": false, "grade_id": "log_softmax-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def log_softmax(x):
    """Numerically stable log-softmax over the last axis, in natural log (nats).

    Task: return (x - m) - log(sum(exp(x - m))) where m is each row's maximum.
    Shapes: x (..., V) -> (..., V), same dtype.
    Example: np.exp(log_softmax(x)) equals softmax(x); log_softmax(np.zeros(4)) is log(1/4) everywhere.
    Hints: do not take the log of your softmax (tiny probabilities round to 0, whose log is -inf).
        np.log is the natural log.
    """
    ### BEGIN SOLUTION
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "log_softmax", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("03-lm-head/log_softmax", log_softmax)

# %% [markdown]
# ## Cross-entropy: how surprised the model is
#
# Train a model by making the text it reads likely. For a text of tokens $x_0, \dots, x_{T-1}$,
# row $t$ of the logits predicts $x_{t+1}$, so the loss compares the logits *shifted by one* with
# the text: rows $0..T-2$ against tokens $1..T-1$. The **cross-entropy** is the average negative
# log-probability the model gave to the token that actually came next:
#
# $$
# \begin{aligned}
# \mathcal{L} &= -\frac{1}{T-1} \sum_{t=0}^{T-2} \log p_t(x_{t+1}), \\
# p_t &= \mathrm{softmax}(z_t).
# \end{aligned}
# $$
#
# With the natural log the unit is the **nat**; divided by $\ln 2$ it is in bits. A model that
# always gives the right token probability 1 scores 0; each halving of that probability costs
# $\ln 2$ nats more.
#
# :::{note}
# `lib.cross_entropy(logits, targets)` takes the targets already aligned with the logits. The
# exercise below instead takes the model's **input** `ids` and does the shift itself, so that
# `cross_entropy(model.forward(ids), ids)` is the loss of the text `ids`.
# :::

# %% [markdown]
# ### Exercise: cross-entropy of a text


# %% nbgrader={"grade": false, "grade_id": "cross_entropy-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cross_entropy(logits, ids):
    """Mean next-token loss of a text, in nats: row t of the logits is scored on ids[t + 1].

    Task: take log_softmax of logits[..., :-1, :], pick at each position the log-probability of
        the next token ids[..., 1:], and return minus their mean.
    Shapes: logits (T, V) or (B, T, V) (the model's output for ids); ids (T,) or (B, T)
        -> a float (the mean over the B * (T - 1) predictions).
    Example: cross_entropy(np.zeros((5, V)), ids) is log(V) for any ids (a uniform guess).
    Hints: use your log_softmax. np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
        picks one entry per row. The last position has no target; the first token is never
        predicted.
    """
    ### BEGIN SOLUTION
    logp = log_softmax(logits[..., :-1, :])
    picked = np.take_along_axis(logp, ids[..., 1:, None], axis=-1)[..., 0]
    return float(-picked.mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "cross_entropy", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("03-lm-head/cross_entropy", cross_entropy)

# %% [markdown]
# ## Perplexity
#
# The loss is an average of logarithms; its exponential brings it back to a count:
#
# $$
# \mathrm{PPL} = e^{\mathcal{L}} = \Big(\prod_{t} p_t(x_{t+1})\Big)^{-1/(T-1)} ,
# $$
#
# the inverse of the geometric-mean probability of the right tokens. Read it as "the model is, on
# average, as unsure as if it were choosing uniformly among PPL tokens". A model that knows
# nothing, and spreads its probability evenly, has $p = 1/V$ everywhere, so $\mathcal{L} = \ln V$
# and its perplexity is exactly $V$. A perfect model has perplexity 1. Perplexities can only be
# compared between models that share a tokenizer: a character model and a word model divide the
# same text into very different numbers of predictions.

# %%
text_ids = tok.encode("Know you this ring? this ring was his of late.")
uniform = np.zeros((len(text_ids), V), dtype=np.float32)  # the same logit for every token
loss_uniform = lib.cross_entropy(uniform[:-1], text_ids[1:])
print(
    f"uniform guess: loss = {loss_uniform:.4f} nats = ln V, perplexity = {lib.perplexity(loss_uniform):.2f}, V = {V}"
)

# %% [markdown]
# ### Exercise: perplexity


# %% nbgrader={"grade": false, "grade_id": "perplexity-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def perplexity(logits, ids):
    """Perplexity of the text ids under the logits: exp of the mean next-token loss.

    Task: return e raised to your cross_entropy(logits, ids).
    Shapes: as cross_entropy -> a float, at least 1.
    Example: perplexity(np.zeros((5, V)), ids) is V.
    Hints: the loss is in nats, so use np.exp. Exponentiate the mean, not each position's loss.
    """
    ### BEGIN SOLUTION
    return float(np.exp(cross_entropy(logits, ids)))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "perplexity", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("03-lm-head/perplexity", perplexity)

# %% [markdown]
# **Concept check.** On a long text, a model always hesitates between exactly two characters: it
# gives each of them probability $1/2$, and the right character is always one of the two. What are
# its loss and its perplexity?
#
# - (a) loss $\ln 2 \approx 0.69$ nats, perplexity 2
# - (b) loss $0.5$ nats, perplexity 2
# - (c) loss $\ln 2$ nats, perplexity $V / 2$
# - (d) loss 1 nat, perplexity $e$

# %% nbgrader={"grade": false, "grade_id": "q_uniform-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_uniform = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_uniform = "a"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_uniform", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("03-lm-head/q_uniform", answer_q_uniform)

# %% [markdown]
# ## The loss along a real passage
#
# The course model was trained on most of the plays and tested on text it never saw (the last
# part of every play, shipped as `heldout.txt`). Here is its loss at each position of one
# held-out window of `n_ctx` predictions. Early positions have little context to go on; later
# ones can use the words and lines before them. The spikes mark the characters that are hard to
# guess even with context, such as the first letter of a word.

# %%
if not GRADING:
    heldout = (Path(lib.__file__).parent / "models" / "shakespeare" / "heldout.txt").read_text(
        encoding="utf-8"
    )
    n_ctx = model.config.n_ctx
    start = heldout.index("\n", len(heldout) // 3) + 1  # a window starting at a line break
    window = tok.encode(heldout[start : start + n_ctx + 1])
    passage_logits = model.forward(window[:-1])  # (n_ctx, V): row t predicts window[t + 1]
    logp = lib.log_softmax(passage_logits)
    nll = -logp[np.arange(n_ctx), window[1:]]  # loss at each position
    loss = lib.cross_entropy(passage_logits, window[1:])
    print(
        f"mean loss {loss:.3f} nats/char = {loss / np.log(2):.3f} bits/char, perplexity {lib.perplexity(loss):.2f} (V = {V})"
    )

# %% tags=["hide-input"] mystnb={"image": {"alt": "Line plot of the model's loss in nats at each position of a held-out Shakespeare passage, with a running mean; spikes mark hard characters."}}
if not GRADING:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(nll, lw=0.8, color="tab:gray", label="loss at position t")
    running = np.convolve(nll, np.ones(16) / 16, mode="valid")
    ax.plot(np.arange(15, n_ctx), running, color="tab:red", label="mean of the last 16")
    ax.axhline(np.log(V), ls="--", color="k", lw=0.8, label="uniform guess, ln V")
    ax.set_xlabel("position t (predicting character t + 1)")
    ax.set_ylabel("loss (nats)")
    ax.legend(loc="upper right", fontsize=9)
    fig.tight_layout()
    plt.show()

# %%
if not GRADING:
    worst = np.argsort(-nll, kind="stable")[:5]
    for t in worst:
        context = heldout[start : start + t + 1][-15:]
        print(
            f"position {t:3d}: after {context!r} the next character {heldout[start + t + 1]!r} got p = {np.exp(-nll[t]):.4f}"
        )

# %% [markdown]
# ## The logit lens
#
# The head can read the stream anywhere, not only at the top. Apply the final norm and the
# unembedding to the stream after the embedding and after each block, and you get the prediction
# the model "would make" if it stopped there {cite}`nostalgebraist2020logitlens`. This works
# because every block only *adds* to the same residual stream {cite}`elhage2021mathematical`, so
# all of them write in a shared space that the head knows how to read. Below, each cell is one
# position of the first characters of a held-out line (columns) read after one stage (rows); its
# colour is the probability of the character that really comes next, and its label is the
# character the lens ranks first. The last row is the model's actual output.

# %%
if not GRADING:
    lens_text = heldout[start : start + 17]
    lens_ids = tok.encode(lens_text)
    _, lens_trace = model.forward(lens_ids[:-1], trace=True)
    rows = ["embed.out"] + [f"h.{i}.resid_post" for i in range(model.config.n_layer)]

    def lens(stream):
        """The final norm and the head, applied to the stream wherever it was read."""
        normed = lib.norm(stream, model.params["ln_f"], model.config)
        return lib.softmax(lib.lm_head(normed, model.w_unembed))

    lens_probs = np.stack([lens(lens_trace[r]) for r in rows])  # (stages, T, V)
    p_true = lens_probs[:, np.arange(len(lens_ids) - 1), lens_ids[1:]]  # (stages, T)
    top_char = lens_probs.argmax(axis=-1)
    print("probability of the true next character, averaged over positions:")
    for r, p in zip(rows, p_true.mean(axis=1), strict=True):
        print(f"  after {r:>14}: {p:.3f}")

# %% tags=["hide-input"] mystnb={"image": {"alt": "Logit-lens heatmap: rows are the embedding and each block, columns are the positions of the first sixteen characters of a held-out line; colour is the probability of the true next character and each cell shows the lens's top guess."}}
if not GRADING:
    T_lens = len(lens_ids) - 1
    fig, ax = plt.subplots(figsize=(5.5, 3))
    im = ax.imshow(p_true, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    for s in range(len(rows)):
        for t in range(T_lens):
            ch = show(tok.decode(top_char[s, t : t + 1]))
            ax.text(t, s, ch, ha="center", va="center", color="w" if p_true[s, t] < 0.6 else "k")
    ax.set_yticks(range(len(rows)), ["embed"] + [f"block {i}" for i in range(model.config.n_layer)])
    ax.set_xticks(range(T_lens), [show(c) for c in lens_text[:-1]])
    ax.set_xlabel("input character (the lens predicts the next)")
    fig.colorbar(im, ax=ax, label="p(true next char)", fraction=0.04)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Summary
#
# - The stream leaving the last block goes through a final norm and one matrix $W_U$ of shape
#   $(d, V)$: one logit per token. A tied head reuses the embedding, $W_U = E^\top$.
# - Row $t$ of the logits predicts token $t+1$. Generation reads the last row; training scores all
#   $T-1$ rows that have a target in one pass.
# - The softmax is computed after subtracting the row maximum, and log-probabilities directly in
#   log space, or float32 overflows and underflows.
# - The loss is the mean negative log-probability of the next tokens, in nats; its exponential,
#   the perplexity, is $V$ for a uniform guess and 1 for a perfect model.
# - The logit lens reads the stream after every block with the same head.
#
# The next chapter turns this distribution into text: choosing a token, again and again.
