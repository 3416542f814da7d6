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
# # Sampling and generation: from a distribution to text
#
# :::{admonition} In this chapter
# :class: note
# - **You will be able to** reshape a next-token distribution with temperature, top-k and top-p,
#   draw from it reproducibly with a seed, write the generation loop, and explain what the KV cache
#   saves and why decoding one token is limited by memory rather than arithmetic.
# - **It assumes** chapter 3 (logits, the softmax) and chapter 2's causal mask and keys and values.
# - **Time:** about 2.5 hours: 50 minutes of reading, 1 hour 40 minutes for seven exercises and
#   three questions.
# :::
#
# The forward pass ends with a probability for every token (chapter 3). To write text, something
# must choose one token, append it to the input, and run the model again, over and over. This
# chapter builds that loop:
#
# 1. **decoding rules** that reshape the distribution before a token is drawn: temperature,
#    top-k and top-p (nucleus), and the order in which they combine;
# 2. a **seeded draw**, so that the same seed always gives the same text;
# 3. the **generation loop**, with a budget and a stop token;
# 4. the **KV cache**, which makes each step of the loop cheap without changing its result, and
#    why a decoding step waits on memory rather than on arithmetic.
#
# Every rule here follows `lib/sampling.py` exactly, down to how ties are broken, so your
# functions can be compared with `lib`'s draw for draw.
#
# <!-- class only -->
# Before you submit, restart the kernel and run every cell, then run `nbgrader validate
# sampling.ipynb` in a terminal in this folder (or the **Validate** button of JupyterLab's assignment
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

# The course's models are small: one BLAS thread runs them as fast as several, and keeps the
# timings in this chapter steady on a shared machine. (It must be set before NumPy is imported.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time

import ipywidgets as widgets
import numpy as np
from IPython.display import display

import lib
from grader.check import check
from lib import causal_mask, scaled_dot_product_attention, softmax

GRADING = "NBGRADER_EXECUTION" in os.environ
rng = np.random.default_rng(0)
np.set_printoptions(precision=4, suppress=True)
if not GRADING:  # presentation only: grading neither needs it nor sees it
    import matplotlib.pyplot as plt

    import bookkit

    bookkit.style.use()  # figures as SVG, sized to read on a phone

# %%
model = lib.load_pretrained("shakespeare")
tok = model.tokenizer
V = model.config.vocab_size
print(model)

prompt = "ROMEO.\nBut soft, what light through yonder window breaks?\n"
ids = tok.encode(prompt)
logits = model.forward(ids)[-1]  # (V,): the next character after the prompt


def show(ch):
    """A character as a readable label: line breaks and spaces made visible."""
    return {"\n": "⏎", " ": "␣"}.get(ch, ch)


def label(i):
    return show(tok.decode(np.array([i])))


def entropy_bits(p):
    """Entropy of a distribution in bits (0 for a certain outcome, log2 V for a uniform one)."""
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: a certain outcome is 0 bits, not -0


print(f"{len(ids)} prompt tokens, V = {V}")

# %% [markdown]
# ## Greedy decoding
#
# The simplest rule takes the most likely token every time: $x_{t+1} = \arg\max_v z_{t,v}$. It is
# deterministic, and often dull: a model that always takes its single best guess tends to fall
# into loops, because once a phrase is likely it stays likely. `lib.generate` with
# `temperature=0` decodes greedily:

# %%
if not GRADING:
    greedy = lib.generate(model, ids, 200, temperature=0)
    print(tok.decode(greedy[len(ids) :]))

# %% [markdown]
# ## Temperature
#
# Temperature $T$ divides the logits before the softmax:
#
# $$
# p_v(T) = \frac{e^{z_v / T}}{\sum_u e^{z_u / T}} .
# $$
#
# $T < 1$ stretches the gaps between logits, so the likely tokens get likelier: the distribution
# sharpens. $T > 1$ shrinks the gaps and flattens it. The two limits are worth knowing by heart:
# as $T \to 0$ all the probability goes to the largest logit (greedy decoding), and as
# $T \to \infty$ every gap vanishes and the distribution becomes uniform over the $V$ tokens.
# `lib` defines $T = 0$ as the limit itself: the largest logit is kept, every other one becomes
# $-\infty$ (and among equal largest logits, the lowest token id wins).
#
# A common slip is to apply temperature to *probabilities*: $p_v / T$, renormalised, is just
# $p_v$ again. It must divide the logits. (Raising probabilities to the power $1/T$ is the same
# thing as dividing logits, written the other way.)

# %% tags=["hide-input"] mystnb={"image": {"alt": "Top: the next-character distribution after the prompt at temperatures 0.5, 1 and 2, for the 15 most likely characters. Bottom: the entropy of the distribution in bits as the temperature grows, approaching log2 V."}}
if not GRADING:
    top15 = np.argsort(-logits, kind="stable")[:15]
    temps = np.geomspace(0.1, 20, 60)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(5.5, 6))
    for j, T in enumerate([0.5, 1.0, 2.0]):
        p = lib.filtered_probs(logits, temperature=T)
        ax1.bar(np.arange(15) + (j - 1) * 0.27, p[top15], width=0.27, label=f"T = {T}")
    ax1.set_xticks(range(15), [label(i) for i in top15])
    ax1.set_ylabel("probability")
    ax1.legend()
    ax2.semilogx(temps, [entropy_bits(lib.filtered_probs(logits, temperature=T)) for T in temps])
    ax2.axhline(np.log2(V), ls="--", color="k", lw=0.8, label="uniform: log2 V")
    ax2.set_xlabel("temperature T")
    ax2.set_ylabel("entropy (bits)")
    ax2.legend()
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ### Exercise: temperature


# %% nbgrader={"grade": false, "grade_id": "apply_temperature-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def apply_temperature(logits, temperature):
    """Divide the logits by the temperature; temperature 0 keeps only the largest logit.

    Task: return logits / temperature. For temperature == 0 (greedy), return a copy of the
        logits in which every entry except the largest is -inf (the largest keeps its value;
        among equal largest logits, keep the lowest id).
    Shapes: logits (V,) or (B, V) -> same shape and dtype (logits, not probabilities).
    Example: softmax(apply_temperature(z, 0.5)) is sharper than softmax(z);
        apply_temperature(np.array([1.0, 3.0, 3.0]), 0) is [-inf, 3.0, -inf].
    Hints: np.argmax returns the first maximum. np.full_like(logits, -np.inf) and
        np.put_along_axis (or plain indexing for one row) build the greedy case.
        x / temperature keeps float32 for a Python float temperature.
    """
    ### BEGIN SOLUTION
    if temperature == 0:
        out = np.full_like(logits, -np.inf)
        best = np.argmax(logits, axis=-1)[..., None]
        np.put_along_axis(out, best, np.take_along_axis(logits, best, axis=-1), axis=-1)
        return out
    return logits / temperature
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "apply_temperature", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("04-sampling/apply_temperature", apply_temperature)

# %% [markdown]
# ## Top-k: cut the tail
#
# Even a good model gives a little probability to thousands of absurd tokens, and together they
# add up: drawn often enough, one of them comes out. **Top-k** keeps only the $k$ largest logits
# and sets the rest to $-\infty$, so their probability after the softmax is exactly 0 and the
# survivors are renormalised among themselves. $k = 1$ is greedy decoding; $k \ge V$ changes
# nothing.
#
# What if several logits tie at the $k$-th place? `lib` keeps exactly $k$ tokens and ranks equal
# logits by token id, lower id first. A *stable* sort of the negated logits,
# `np.argsort(-logits, kind="stable")`, gives that order: equal keys keep their original (id)
# order. Reversing an ascending sort does not: it puts the higher id first.

# %%
z = np.array([2.0, 1.0, 3.0, 1.0, 0.5, 1.0], dtype=np.float32)
print("logits:           ", z)
print("ranking (stable): ", np.argsort(-z, kind="stable"))
print("ranking (reversed):", np.argsort(z, kind="stable")[::-1])
print("lib.top_k_filter(z, 3):", lib.top_k_filter(z, 3))

# %% [markdown]
# ### Exercise: top-k


# %% nbgrader={"grade": false, "grade_id": "top_k_filter-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def top_k_filter(logits, k):
    """Keep the k largest logits, set every other to -inf.

    Task: rank the tokens from largest to smallest logit (equal logits: lower id first) and set
        every token after the k-th place to -inf. k=None or k >= V keeps everything (return a
        copy).
    Shapes: logits (V,) or (B, V) -> same shape and dtype.
    Example: top_k_filter(np.array([2.0, 1.0, 3.0, 1.0]), 2) is [2.0, -inf, 3.0, -inf];
        with k=3 it keeps id 1, not id 3, of the two equal logits.
    Hints: order = np.argsort(-logits, axis=-1, kind="stable"); order[..., k:] are the ids to
        drop; np.put_along_axis(out, drop, -np.inf, axis=-1) sets them. Do not modify the input.
    """
    ### BEGIN SOLUTION
    if k is None or k >= logits.shape[-1]:
        return logits.copy()
    drop = np.argsort(-logits, axis=-1, kind="stable")[..., k:]
    out = logits.copy()
    np.put_along_axis(out, drop, -np.inf, axis=-1)
    return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "top_k_filter", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("04-sampling/top_k_filter", top_k_filter)

# %% [markdown]
# ## Top-p: cut the tail where the probability runs out
#
# A fixed $k$ is too many when the model is sure (one token holds nearly all the probability)
# and too few when it is not (dozens of tokens are plausible). **Top-p**, or nucleus sampling
# {cite}`holtzman2019curious`, keeps the smallest set of most likely tokens whose total
# probability reaches $p$. Sort the tokens by probability, $p_{(1)} \ge p_{(2)} \ge \dots$, and
# keep the token of rank $r$ when the probability ranked above it is still short of $p$:
#
# $$
# \text{keep rank } r \iff \sum_{j < r} p_{(j)} < p .
# $$
#
# So the token that *crosses* the threshold is kept, and the first token always is (nothing is
# ranked above it): top-p never keeps zero tokens. $p = 1$ keeps everything. Ties are ranked by
# id, as in top-k. The figure shows the rule on our prompt's distribution.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Bars of the most likely next characters sorted by probability, with the cumulative probability as a line and the threshold p = 0.8 as a dashed line; kept tokens are coloured, including the one whose bar crosses the threshold."}}
if not GRADING:
    top_p_demo = 0.8
    probs = lib.softmax(logits)
    kept = np.isfinite(lib.top_p_filter(logits, top_p_demo))
    n_show = int(min(V, 24, max(12, kept.sum() + 4)))  # the kept tokens and a few dropped ones
    ranked = np.argsort(-logits, kind="stable")[:n_show]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.bar(range(n_show), probs[ranked], color=["tab:blue" if kept[i] else "lightgray" for i in ranked])
    ax.step(
        range(n_show), np.cumsum(probs[ranked]), where="mid", color="tab:red", label="cumulative probability"
    )
    ax.axhline(top_p_demo, ls="--", color="k", lw=0.8, label=f"p = {top_p_demo}")
    ax.set_xticks(range(n_show), [label(i) for i in ranked])
    ax.set_ylabel("probability")
    ax.set_title(f"top-p keeps {int(kept.sum())} of {V} tokens (blue)")
    ax.legend(loc="center right")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ### Exercise: top-p


# %% nbgrader={"grade": false, "grade_id": "top_p_filter-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def top_p_filter(logits, p):
    """Nucleus filter: keep the most likely tokens until their probability reaches p.

    Task: rank tokens by logit (equal logits: lower id first), compute their probabilities with
        softmax, and keep a token when the total probability ranked strictly above it is < p
        (so the token that crosses p is kept). Set the others to -inf. p=None or p >= 1 keeps
        everything (return a copy).
    Shapes: logits (V,) or (B, V) -> same shape and dtype.
    Example: probabilities 0.5, 0.3, 0.15, 0.05 (in that order) with p = 0.7 keep the first two.
    Hints: order = np.argsort(-logits, axis=-1, kind="stable"); sort the probabilities with
        np.take_along_axis; mass_before = np.cumsum(sorted, axis=-1) - sorted. Put the decision
        back in id order with np.put_along_axis.
    """
    ### BEGIN SOLUTION
    if p is None or p >= 1.0:
        return logits.copy()
    order = np.argsort(-logits, axis=-1, kind="stable")
    sorted_probs = np.take_along_axis(softmax(logits), order, axis=-1)
    mass_before = np.cumsum(sorted_probs, axis=-1) - sorted_probs
    keep = np.zeros(logits.shape, dtype=bool)
    np.put_along_axis(keep, order, mass_before < p, axis=-1)
    return np.where(keep, logits, -np.inf).astype(logits.dtype)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "top_p_filter", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("04-sampling/top_p_filter", top_p_filter)

# %% [markdown]
# **Concept check.** Four tokens have probabilities 0.4, 0.3, 0.2 and 0.1, in that order, and
# `top_p=0.75`. Which tokens does top-p (as defined above) keep?
#
# - (a) only the first
# - (b) the first two
# - (c) the first three
# - (d) all four

# %% nbgrader={"grade": false, "grade_id": "q_top_p-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_top_p = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_top_p = "c"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_top_p", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("04-sampling/q_top_p", answer_q_top_p)

# %% [markdown]
# **Concept check.** Temperature is one of three rules that reshape the logits; the next section
# chains them. With a temperature $T > 0$, does it matter whether the logits are divided by $T$
# before or after top-k? Before or after top-p?
#
# - (a) It matters for top-p only.
# - (b) It matters for both.
# - (c) It matters for neither: both filters look only at the order of the logits.
# - (d) It matters for top-k only.

# %% nbgrader={"grade": false, "grade_id": "q_order-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_order = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_order = "a"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_order", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("04-sampling/q_order", answer_q_order)

# %% [markdown]
# ## Putting the rules together
#
# Each filter takes logits and returns logits, so they compose. `lib` applies them in one fixed
# order, and so will you:
#
# $$
# z \;\xrightarrow{\;/T\;}\; \xrightarrow{\text{top-}k}\; \xrightarrow{\text{top-}p}\;
# \xrightarrow{\text{softmax}}\; p .
# $$
#
# The order matters. Dividing by $T > 0$ keeps the ranking of the logits, so top-k keeps the same
# tokens whether temperature comes before it or after. But temperature changes the probabilities
# that top-p adds up: at a high temperature more tokens are needed to reach $p$, so temperature
# comes first, and top-p sees the distribution that will be sampled. Top-p comes after top-k,
# so it measures probabilities renormalised among the $k$ survivors. And the softmax comes last,
# once: taking it first and then zeroing the removed tokens leaves a "distribution" that no longer
# sums to one.

# %%
for T in [0.7, 1.0, 1.5]:
    kept_p = int((lib.filtered_probs(logits, temperature=T, top_p=0.9) > 0).sum())
    kept_kp = int((lib.filtered_probs(logits, temperature=T, top_k=10, top_p=0.9) > 0).sum())
    print(f"T = {T}: top-p 0.9 keeps {kept_p:2d} tokens; top-k 10 then top-p 0.9 keeps {kept_kp:2d}")

# %% [markdown]
# ### Exercise: the distribution we sample from


# %% nbgrader={"grade": false, "grade_id": "filtered_probs-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def filtered_probs(logits, temperature=1.0, top_k=None, top_p=None):
    """The distribution a token is drawn from: temperature, then top-k, then top-p, then softmax.

    Task: chain your apply_temperature, top_k_filter and top_p_filter in that order, then take
        the softmax of the result.
    Shapes: logits (V,) or (B, V) -> probabilities of the same shape; removed tokens have
        probability 0 and each row sums to 1.
    Example: filtered_probs(z) is softmax(z); filtered_probs(z, 0) is one-hot at the argmax.
    Hints: softmax (from lib, the one you wrote in chapter 3) handles -inf logits.
    """
    ### BEGIN SOLUTION
    z = apply_temperature(logits, temperature)
    z = top_k_filter(z, top_k)
    z = top_p_filter(z, top_p)
    return softmax(z)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "filtered_probs", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("04-sampling/filtered_probs", filtered_probs)

# %% [markdown]
# ### Try it
#
# Move the controls to reshape the distribution of the next character after the prompt. The bars
# are the 25 most likely characters; grey shows the raw distribution ($T = 1$, no filter), blue
# the filtered one, and the title the number of characters kept and the entropy. In a notebook the
# figure calls **your** `apply_temperature`, `top_k_filter` and `top_p_filter` (and says so; while
# one is not written yet it uses `lib`'s instead). On the web page, every setting of the grid was
# computed with `lib` when the book was built.


# %% tags=["hide-input"]
def reader_or_lib(name, *args):
    """Call the reader's function ``name``; fall back to lib's while it is not written or fails."""
    try:
        return globals()[name](*args), "yours"
    except NotImplementedError:
        return getattr(lib, name)(*args), "lib's (yours is not written yet)"
    except Exception as err:  # a bug in the reader's function: show lib's, and say why
        return getattr(lib, name)(*args), f"lib's (yours raised {type(err).__name__})"


SHOWN = np.argsort(-logits, kind="stable")[:25]  # the 25 most likely characters, raw


def filter_title(temperature, top_k, top_p, probs):
    k, kept = "all" if top_k >= V else top_k, int((probs > 0).sum())
    return (
        f"T = {temperature}, top-k = {k}, top-p = {top_p}: {kept} character{'s' * (kept != 1)} kept, "
        f"entropy {entropy_bits(probs):.2f} bits (raw {entropy_bits(lib.softmax(logits)):.2f})"
    )


def draw_filtered(temperature, top_k, top_p):
    z, src_t = reader_or_lib("apply_temperature", logits, temperature)
    z, src_k = reader_or_lib("top_k_filter", z, int(top_k))
    z, src_p = reader_or_lib("top_p_filter", z, top_p)
    probs = lib.softmax(z)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(range(25), lib.softmax(logits)[SHOWN], color="lightgray", label="raw")
    ax.bar(range(25), probs[SHOWN], width=0.5, color="tab:blue", label="filtered")
    ax.set_xticks(range(25), [label(i) for i in SHOWN])
    ax.set_ylim(0, 1)
    ax.set_title(filter_title(temperature, top_k, top_p, probs), fontsize=10)
    ax.legend()
    fig.tight_layout()
    plt.show()
    print(f"temperature: {src_t}\ntop-k: {src_k}\ntop-p: {src_p}")


def filtered_state(temperature, top_k, top_p):
    probs = lib.filtered_probs(
        logits, temperature=temperature, top_k=None if top_k >= V else top_k, top_p=top_p
    )
    bars = bookkit.Bars(
        {"raw (T = 1, no filter)": lib.softmax(logits)[SHOWN], "filtered": probs[SHOWN]},
        labels=[label(i) for i in SHOWN],
        ymax=1,
        ylabel="probability",
    )
    return bookkit.State(filter_title(temperature, top_k, top_p, probs), [bars])


if not GRADING:
    bookkit.explore(
        [
            bookkit.Slider("temperature", [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0], value=1.0, label="T"),
            bookkit.Slider(
                "top_k",
                [1, 3, 5, 10, 20, V],
                value=V,
                label="top-k",
                fmt=lambda k: "all" if k >= V else str(k),
            ),
            bookkit.Slider("top_p", [0.5, 0.75, 0.9, 0.95, 1.0], value=1.0, label="top-p"),
        ],
        live=draw_filtered,
        static=filtered_state,
    )

# %% [markdown]
# ## Drawing a token, reproducibly
#
# To draw from a distribution $p$, take one uniform random number $u \in [0, 1)$ and return the
# first token whose cumulative probability exceeds it:
#
# $$
# x = \min \{ v : \textstyle\sum_{j \le v} p_j > u \} .
# $$
#
# Each token owns an interval of $[0, 1)$ as long as its probability, so it is drawn with exactly
# that probability. NumPy's `rng.choice(V, p=p)` does the same thing with the same single number,
# but insists that `p` sum to 1 within about $10^{-8}$, which float32 probabilities rarely do:
# convert them to float64 and divide by their sum first. The random numbers come from a generator made with a **seed**,
# `np.random.default_rng(seed)`: the same seed gives the same sequence of $u$, hence the same
# tokens, on any machine. Pass the generator around rather than creating one per draw or using
# NumPy's global `np.random.*` functions, or the draws stop being reproducible. Greedy steps
# ($T = 0$ or $k = 1$) need no random number, and in `lib` they draw none, so they do not shift
# the draws that follow.

# %%
if not GRADING:
    run1 = lib.generate(model, ids, 60, temperature=0.8, rng=np.random.default_rng(42))
    run2 = lib.generate(model, ids, 60, temperature=0.8, rng=np.random.default_rng(42))
    run3 = lib.generate(model, ids, 60, temperature=0.8, rng=np.random.default_rng(43))
    print("seed 42:", repr(tok.decode(run1[len(ids) :])))
    print("seed 42:", repr(tok.decode(run2[len(ids) :])))
    print("seed 43:", repr(tok.decode(run3[len(ids) :])))
    print("same seed, same text:", np.array_equal(run1, run2))

# %% [markdown]
# ### Exercise: sample the next token
#
# The check runs your function in two ways. First it draws many tokens from one seeded generator
# and compares how often each token came out with the exact filtered distribution. Then it
# compares short sequences of draws with `lib`'s, draw for draw, for the same seed: that only
# works if you use the generator as described (one `rng.random()` per draw, none in a greedy step).


# %% nbgrader={"grade": false, "grade_id": "sample_next-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sample_next(logits, rng, temperature=1.0, top_k=None, top_p=None):
    """Draw the next token id from logits of shape (V,), with a seeded generator.

    Task: if temperature == 0 or top_k == 1, return the argmax WITHOUT using rng. Otherwise
        compute probs = filtered_probs(logits, temperature, top_k, top_p), draw ONE number
        u = rng.random(), and return the first id whose cumulative probability exceeds u.
    Shapes: logits (V,); rng a np.random.Generator -> an int in [0, V).
    Example: with rng = np.random.default_rng(0), the ids you draw equal those of
        lib.sample_next(logits, np.random.default_rng(0), ...) call for call.
    Hints: cdf = np.cumsum(probs); np.searchsorted(cdf, u * cdf[-1], side="right") is the count of
        cdf <= u (scaling u by cdf[-1] absorbs rounding). rng.choice(V, p=p) draws the same way
        if p is float64 and divided by its sum. Never create a generator inside this function.
        Return int(...).
    """
    ### BEGIN SOLUTION
    if temperature == 0 or top_k == 1:
        return int(np.argmax(logits))
    probs = filtered_probs(logits, temperature, top_k, top_p).astype(np.float64)
    cdf = np.cumsum(probs)
    u = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, u, side="right"), len(cdf) - 1))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "sample_next", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("04-sampling/sample_next", sample_next)

# %% [markdown]
# Many draws from one seeded generator reproduce the distribution they come from. Here are the
# frequencies of 3000 draws with `lib.sample_next` next to the filtered probabilities:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Paired bars for the 12 most likely next characters: the filtered probability at temperature 0.8 with top-p 0.95, and the frequency among 3000 seeded draws; the two agree closely."}}
if not GRADING:
    gen = np.random.default_rng(7)
    settings = {"temperature": 0.8, "top_p": 0.95}
    draws = np.array([int(lib.sample_next(logits, gen, **settings)) for _ in range(3000)])
    freq = np.bincount(draws, minlength=V) / len(draws)
    target = lib.filtered_probs(logits, **settings)
    shown = np.argsort(-target, kind="stable")[:12]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.bar(np.arange(12) - 0.2, target[shown], width=0.4, label="filtered probability")
    ax.bar(np.arange(12) + 0.2, freq[shown], width=0.4, label="frequency in 3000 draws")
    ax.set_xticks(range(12), [label(i) for i in shown])
    ax.legend()
    fig.tight_layout()
    plt.show()
    print(f"largest gap between frequency and probability: {np.abs(freq - target).max():.4f}")

# %% [markdown]
# ## The generation loop
#
# Generation repeats one step: run the model on the sequence so far, draw a token from the last
# position's distribution, append it. Two things end the loop: the **budget** (at most
# `max_new_tokens` new tokens; `lib.generate` also never runs past the model's context `n_ctx`)
# and an optional **stop token**, emitted and then the loop ends. (The Shakespeare model has no
# special end-of-text token; a line break or a full stop can play that part.)
#
# Your loop gets the model as a function `next_logits(ids) -> (V,)`, the logits of the next token
# after the whole sequence `ids`, so the check can use a small fixed stand-in. For the real
# model, `next_logits = lambda ids: model.forward(ids)[-1]`.


# %% nbgrader={"grade": false, "grade_id": "generate-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def generate(next_logits, ids, max_new_tokens, rng, temperature=1.0, top_k=None, top_p=None, stop_token=None):
    """Extend ids token by token with your sample_next, until the budget or the stop token.

    Task: repeat at most max_new_tokens times: logits = next_logits(sequence so far); draw a token
        with sample_next(logits, rng, temperature, top_k, top_p); append it; stop right after
        appending stop_token (if it is not None).
    Shapes: ids (T,) ints -> int64 array (T + n_new,): the prompt followed by the new tokens.
    Example: generate(f, ids, 0, rng) returns ids; a stop token drawn first gives T + 1 ids.
    Hints: keep the sequence as a Python list and pass np.array(sequence) to next_logits (it
        needs the whole sequence, not only the last token). Use the same rng for every step.
    """
    ### BEGIN SOLUTION
    sequence = [int(i) for i in ids]
    for _ in range(max_new_tokens):
        token = sample_next(next_logits(np.array(sequence)), rng, temperature, top_k, top_p)
        sequence.append(int(token))
        if token == stop_token:
            break
    return np.array(sequence, dtype=np.int64)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "generate", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("04-sampling/generate", generate)

# %% [markdown]
# ### Try it: generate from the Shakespeare model
#
# In a notebook, choose the settings and press the button: `lib.generate` continues the prompt for
# the chosen number of characters, or until it writes a line break if "stop at ⏎" is ticked (the
# line break is then the stop token). On the web page there is no Python to run, so the page holds
# the continuations of one prompt for a grid of temperatures and seeds, written by `lib.generate`
# when the book was built.


# %% tags=["hide-input"]
def continue_text(prompt_text, temperature, top_k, top_p, seed, n_tokens, stop_at_newline):
    prompt_ids = tok.encode(prompt_text)
    out = lib.generate(
        model,
        prompt_ids,
        n_tokens,
        temperature=temperature,
        top_k=None if top_k >= V else top_k,
        top_p=top_p,
        rng=np.random.default_rng(seed),
        stop_token=int(tok.encode("\n")[0]) if stop_at_newline else None,
    )
    return tok.decode(out)


JULIET = "JULIET.\nO Romeo, Romeo!"


def generation_state(temperature, seed):
    text = continue_text(JULIET, temperature, V, 0.95, seed, 160, False)
    title = f"T = {temperature}, seed {seed}, top-p 0.95: 160 characters after the prompt"
    return bookkit.State(title, [bookkit.Text(text)])


if not GRADING and bookkit.EDITION:
    display(
        bookkit.Explorer(
            [
                bookkit.Slider("temperature", [0.0, 0.5, 0.8, 1.2], value=0.8, label="T"),
                bookkit.Slider("seed", [0, 1, 2]),
            ],
            generation_state,
        )
    )
elif not GRADING:
    controls = {
        "prompt_text": widgets.Textarea(value=JULIET, description="prompt"),
        "temperature": widgets.FloatSlider(value=0.8, min=0.0, max=2.0, step=0.05, description="T"),
        "top_k": widgets.IntSlider(value=V, min=1, max=V, description="top-k"),
        "top_p": widgets.FloatSlider(value=0.95, min=0.05, max=1.0, step=0.05, description="top-p"),
        "seed": widgets.IntText(value=0, description="seed"),
        "n_tokens": widgets.IntSlider(value=200, min=10, max=200, step=10, description="tokens"),
        "stop_at_newline": widgets.Checkbox(value=False, description="stop at ⏎"),
    }
    button = widgets.Button(description="Generate")
    text_out = widgets.Output()

    def on_click(_=None):
        with text_out:
            text_out.clear_output()
            print(continue_text(**{name: w.value for name, w in controls.items()}))

    button.on_click(on_click)
    on_click()
    display(widgets.VBox([*controls.values(), button, text_out]))

# %% [markdown]
# In the web book, the model itself also runs in the page, without a kernel, with every control of
# the notebook's version: the bars show the raw and the filtered distribution of the next
# character, and "Generate" draws with the seed shown, the same characters `lib.generate` draws
# with that seed and those settings.
#
# <div class="fp-live" data-prompt="JULIET.&#10;O Romeo, Romeo!" data-parts="next sample">
# <p><em>The live model runs here in the web book served over http (<code>make serve</code>); opened from disk, or in a notebook, the page shows this line instead.</em></p>
# </div>

# %% [markdown]
# ## The KV cache
#
# Run naively, the loop recomputes everything at every step: to get the logits after $t$ tokens
# it processes all $t$ of them again, although only the last one is new. But look at what attention
# needs from earlier positions: their keys and values, in every layer. Because of the causal mask,
# the key and value of position $s$ depend only on tokens $0..s$ (chapter 2), so a token that
# arrives later can never change them. Compute them once, store them, and each step only has to
# process the new token:
#
# 1. run the new token through the blocks; in each attention layer compute its query, key and value;
# 2. **append** its key and value to that layer's cache;
# 3. attend from its query to all the cached keys (its own included), and read the cached values.
#
# The result is the same as recomputing from scratch, exactly, up to float rounding: the same keys
# and values enter the same softmax. What is stored is, per layer and per key/value head, one
# key and one value vector of size $d_{\text{head}}$ for every token so far. `lib` keeps a buffer
# sized for the whole context and fills it left to right:

# %%
cache = model.new_cache()
_ = model.forward(ids, cache=cache)  # the prompt fills the cache ("prefill")
c = model.config
per_token = 2 * c.n_layer * c.n_kv_head * c.d_head * np.dtype(model.dtype).itemsize
print(f"{len(cache.layers)} layers, each a key and a value buffer of shape {cache.layers[0].k.shape}")
print(f"tokens cached: {cache.length}, bytes used: {cache.nbytes():,} ({per_token:,} bytes per token)")

# %% [markdown]
# ### Exercise: one attention step with a cache
#
# For one layer and one sequence: given the queries, keys and values of the $T$ new tokens and the
# cache of the $S$ tokens before them, return the attention output of the new tokens and the grown
# cache. With several new tokens at once (a prompt), new token $i$ sits at position $S + i$ and may
# see keys $0..S+i$: that is `causal_mask(T, S + T)`. You may use `scaled_dot_product_attention`
# and `causal_mask` from chapter 2 (imported from `lib` in the setup cell).


# %% nbgrader={"grade": false, "grade_id": "attend_with_cache-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def attend_with_cache(q_new, k_new, v_new, cache_k, cache_v):
    """Attention for new tokens that reuses the cached keys and values of earlier ones.

    Task: append k_new and v_new after cache_k and cache_v (along the sequence axis), then let the
        new queries attend to all the keys, with a causal mask for the last T of S + T positions.
        Return (out, cache_k, cache_v) with the grown caches.
    Shapes: q_new, k_new, v_new (H, T, d_head); cache_k, cache_v (H, S, d_head), S may be 0
        -> out (H, T, d_head), cache_k and cache_v (H, S + T, d_head).
    Example: out equals the last T rows of full attention over all S + T tokens.
    Hints: np.concatenate([cache_k, k_new], axis=-2).
        scaled_dot_product_attention(q, k, v, mask=causal_mask(T, S + T)).
    """
    ### BEGIN SOLUTION
    cache_k = np.concatenate([cache_k, k_new], axis=-2)
    cache_v = np.concatenate([cache_v, v_new], axis=-2)
    mask = causal_mask(q_new.shape[-2], cache_k.shape[-2])
    return scaled_dot_product_attention(q_new, cache_k, cache_v, mask=mask), cache_k, cache_v
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "attend_with_cache", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("04-sampling/attend_with_cache", attend_with_cache)

# %% [markdown]
# **Concept check.** A prompt of 50 characters has filled the KV cache of the four-layer
# Shakespeare model. Now you change the *first* character of the prompt and want the next-token
# logits of the new prompt. Which cached keys and values are still right?
#
# - (a) All of them except those of position 0.
# - (b) Only layer 0's, at positions 1 to 49. In every later layer, the key and value of a position
#   were computed from a stream that had already read the first character through attention.
# - (c) All of them: a key depends only on the token at its own position.
# - (d) None at all, not even layer 0's: every entry of the cache depends on every token.

# %% nbgrader={"grade": false, "grade_id": "q_cache-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_cache = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_cache = "b"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_cache", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("04-sampling/q_cache", answer_q_cache)

# %% [markdown]
# ### Measured: with and without the cache
#
# `lib.generate(..., use_cache=False)` runs the whole sequence through the model at every step;
# the default keeps a cache. Both draw from the same seeded generator, so they must write the same
# text, and the cached loop should be much faster. Timings depend on the machine and on what else it
# is doing, so the cell first says where it ran: for this page, the machine that built it.

# %%
if not GRADING:
    print(bookkit.host.measured_on())
    n_new = 100
    short_ids = tok.encode("ROMEO.\n")
    start = time.perf_counter()
    with_cache = lib.generate(model, short_ids, n_new, temperature=0.8, rng=np.random.default_rng(1))
    t_cache = time.perf_counter() - start
    start = time.perf_counter()
    without = lib.generate(
        model, short_ids, n_new, temperature=0.8, rng=np.random.default_rng(1), use_cache=False
    )
    t_full = time.perf_counter() - start
    print(f"{n_new} tokens with the cache:    {t_cache:6.2f} s")
    print(f"{n_new} tokens without the cache: {t_full:6.2f} s  ({t_full / t_cache:.1f} times slower)")
    print("same tokens:", np.array_equal(with_cache, without))


# %% [markdown]
# Per step, the difference grows with the length of the sequence: without a cache the step
# processes all $t$ tokens; with one it processes one token and reads $t$ cached keys and values.


# %% tags=["hide-input"] mystnb={"image": {"alt": "Time of one decoding step against the number of tokens so far, with and without the KV cache: without it the time grows with the length, with it the time stays nearly flat."}}
def step_time(fn, repeats=2):
    """The best of a few runs of ``fn()``, in seconds."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


engine = lib.Engine(model)  # the fast path lib.generate runs on (lib/engine.py)


def cached_step_time(prefix, new_token, repeats=2):
    """Time of one cached decoding step after ``prefix``; the cache is rewound between repeats."""
    cache = model.new_cache()
    model.forward(prefix, cache=cache)
    filled = [layer.length for layer in cache.layers]

    def step():
        for layer, length in zip(cache.layers, filled, strict=True):
            layer.length = length  # rewind, so every repeat appends the same token
        engine.prefill(new_token, cache)

    return step_time(step, repeats)


if not GRADING:
    lengths = [16, 64, 128, 255]
    text_ids = np.resize(ids, 256)
    full_ms, cached_ms = [], []
    for n in lengths:
        full_ms.append(1e3 * step_time(lambda n=n: engine.prefill(text_ids[: n + 1])))
        cached_ms.append(1e3 * cached_step_time(text_ids[:n], text_ids[n : n + 1]))
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(lengths, full_ms, "o-", label="without cache: whole sequence")
    ax.plot(lengths, cached_ms, "o-", label="with cache: one new token")
    ax.set_xlabel("tokens so far")
    ax.set_ylabel("time per step (ms)")
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Why decoding waits on memory
#
# With the cache, one step of decoding multiplies a single vector by every weight matrix of the
# model. Each weight is read from memory once and used for one multiply and one add: about $2N$
# floating-point operations for $N$ parameters {cite}`kaplan2020scaling`, against $4N$ bytes read
# in float32 (plus the cache). Half an operation per byte is very little: a processor can do many
# operations in the time it takes memory to deliver one byte, so the step spends its time
# *waiting for weights to arrive*, not computing {cite}`pope2022efficiently`. Running the whole
# prompt at once ("prefill") is different: each weight, once read, is used for every token of
# the prompt. Below, the arithmetic rate of the two, from the model's parameter count and measured
# times, on the machine the cell names:

# %%
if not GRADING:
    print(bookkit.host.measured_on())
    N = model.num_params()
    prompt_ids = np.resize(ids, 256)
    t_prefill = step_time(lambda: engine.forward(prompt_ids))
    t_decode = cached_step_time(prompt_ids[:128], prompt_ids[128:129], repeats=5)
    print(f"parameters N = {N:,}, weights in float32 = {4 * N / 1e6:.1f} MB")
    print(f"prefill, 256 tokens: {2 * N * 256 / t_prefill / 1e9:6.2f} GFLOP/s")
    print(
        f"decode,   1 token:   {2 * N / t_decode / 1e9:6.2f} GFLOP/s "
        f"(reading {4 * N / t_decode / 1e9:.2f} GB/s of weights)"
    )

# %% [markdown]
# Prefill runs at a higher arithmetic rate than decoding: same weights, same machine, but each
# weight read serves many tokens. Our model is small enough that much of it stays in the
# processor's caches from one step to the next, which narrows the gap; a model of many gigabytes
# streams all of its weights from main memory at every step. That is why servers batch many
# users' sequences into one decoding step, and why the KV cache, which grows with every token of
# every sequence, is the memory that long contexts fight over.

# %% [markdown]
# ## Summary
#
# - Decoding rules act on logits, in a fixed order: temperature (divide by $T$; $T=0$ is greedy,
#   large $T$ is uniform), top-k (keep $k$, ties to the lower id), top-p (keep tokens while the
#   mass ranked above is below $p$, the crossing token included), then one softmax.
# - A token is drawn with one uniform number from a seeded generator, so a seed fixes the text.
# - Generation appends one token per step until the budget or the stop token.
# - The KV cache stores every layer's keys and values; the causal mask guarantees they never
#   change, so cached decoding is exact. Each step then reads all the weights to do little
#   arithmetic: decoding is limited by memory traffic.
