# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Introduction: one forward pass
#
# :::{admonition} In this chapter
# :class: note
# - **You will be able to** name the three stages of a forward pass (embedding, a stack of blocks,
#   the LM head), say what shape the data has between them, and run the course's model on a line of
#   text.
# - **It assumes** Python, and NumPy arrays at the level of indexing and matrix products. No
#   machine learning is assumed.
# - **Time:** about 20 minutes of reading; there are no exercises.
# :::
#
# A language model is a function. It takes a sequence of token ids and returns, for the position
# after the last one, a probability for every token in its vocabulary: how likely each is to come
# next. Computing that function once, from ids to probabilities, is a **forward pass**. The name
# sets it apart from the *backward* pass of training, which sends errors back through the network
# to adjust its weights. A deployed model only ever runs forward: its weights are fixed, and
# nothing it reads changes them.
#
# This book follows one forward pass from start to end and shows every array on the way. Each
# number on these pages is computed, when the page is built, by `lib`: a small transformer written
# in NumPy in the style of picoGPT and nanoGPT {cite}`karpathy2022nanogpt`, one short function per
# stage, whose outputs the course's tests compare with PyTorch's on the same weights. In the
# notebooks you write those stages yourself, and a check under each exercise compares your
# function with `lib`'s.

# %%
import os

import numpy as np

import lib
from grader.check import CheckFailed, check

GRADING = "NBGRADER_EXECUTION" in os.environ  # nothing is graded here; kept for uniformity
if not GRADING:  # presentation only: grading neither needs it nor sees it
    import matplotlib.pyplot as plt

    import bookkit

    bookkit.style.use()  # figures as SVG, sized to read on a phone
rng = np.random.default_rng(0)
np.set_printoptions(precision=3, suppress=True, linewidth=100)

model = lib.load_pretrained("shakespeare")
tokenizer = model.tokenizer
line = "But, soft! what light through yonder window breaks?"  # the running line of this page
model


# %%
def label(ch):
    """A printable name for a character: newline and space would be invisible in a figure."""
    return {"\n": "↵", " ": "␣"}.get(ch, ch)


# %% [markdown]
# ## Three stages
#
# Every decoder-only transformer, from GPT-2 {cite}`radford2019language` to today's largest
# models, computes its forward pass in three stages. Write $T$ for the number of tokens, $d$ for
# the model's width and $V$ for the size of its vocabulary.
#
# 1. **Embedding.** Each id $i_t$ selects a row of the embedding matrix $E \in \mathbb{R}^{V
#    \times d}$, and information about its position is added: the sequence of ids becomes a
#    sequence of vectors, an array $X^{(0)} \in \mathbb{R}^{T \times d}$ (chapter 1).
# 2. **A stack of blocks.** $L$ transformer blocks run one after the other,
#    $X^{(\ell+1)} = \mathrm{Block}_\ell\big(X^{(\ell)}\big)$. The blocks have the same
#    architecture and different weights, and each returns an array of exactly the shape it
#    received, $T \times d$: same number of tokens, same width, new values. That is why blocks
#    stack like floors of a building, and why a deeper model is simply one with more floors.
#    Inside a block, attention moves information between positions and an MLP transforms each
#    position on its own; both *add* their result to the array that flows through, the
#    **residual stream** {cite}`elhage2021mathematical` (chapter 2).
# 3. **The LM head.** A final normalisation, then one matrix multiplication turns the vector at
#    the *last* position, $h \in \mathbb{R}^d$, into $V$ scores called **logits**, and the softmax
#    turns those into a probability distribution (chapter 3):
#
# $$z = h\,W_U \in \mathbb{R}^{V}, \qquad p(v) = \frac{e^{z_v}}{\sum_{u} e^{z_u}} .$$
#
# Why the last position? In a model that reads left to right, each position may only look at
# itself and the positions before it, so the last vector is the only one that has seen the whole
# input. (The model computes logits at every position anyway; training uses them all, each one
# predicting the token that follows it.)
#
# The forward pass ends with that distribution. Turning it into text is a separate step,
# **sampling** (chapter 4): pick one token from the distribution, append it to the input, and run
# the forward pass again for the next one.

# %% tags=["hide-input"]
T_demo, d, V, L = (
    len(tokenizer.encode(line)),
    model.config.d_model,
    model.config.vocab_size,
    model.config.n_layer,
)
if not GRADING:
    bookkit.flow(
        [
            bookkit.Step("text", "a string", "outside"),
            bookkit.Step("tokenizer", f"ids ({T_demo},)"),
            bookkit.Step("embedding", f"({T_demo}, {d})"),
            bookkit.Step(f"{L} blocks", f"({T_demo}, {d}) each"),
            bookkit.Step("final norm + LM head", f"last position: logits ({V},)"),
            bookkit.Step("softmax", f"p(next) ({V},)"),
            bookkit.Step("sampling", "one new id", "outside"),
        ],
        label="One forward pass, then one step of generation",
        legend={"pass": "the forward pass", "outside": "before and after it"},
        loop="Generation appends the new id to the ids and runs the forward pass again.",
    )

# %% [markdown]
# ## The forward pass, live
#
# The course ships a small trained model: a GPT-2 with a few blocks that reads and writes
# Shakespeare one *character* at a time (its model card, in the reference part of the book, says
# how it was trained). Here it reads a line. First the tokenizer turns the text into ids:

# %%
ids = tokenizer.encode(line)
print(f"{len(line)} characters -> {ids.shape[0]} ids")
print(ids)

# %% [markdown]
# `model.forward(ids, trace=True)` returns the logits and, by name, every intermediate array of
# the pass. Keeping only the arrays that separate the stages gives the whole picture in a few
# lines:

# %%
logits, trace = model.forward(ids, trace=True)
stations = ["embed.out"] + [f"h.{i}.resid_post" for i in range(model.config.n_layer)] + ["ln_f", "logits"]
meaning = {
    "embed.out": "token + position embeddings: the stream entering block 0",
    "ln_f": "after the final norm",
    "logits": "one score per vocabulary token, at every position",
}
print(f"{'stage':16} {'shape':12} what")
for name in stations:
    what = meaning[name] if name in meaning else f"the stream after block {name.split('.')[1]}"
    print(f"{name:16} {str(trace[name].shape):12} {what}")
assert all(trace[name].shape == trace["embed.out"].shape for name in stations[:-1])

# %% [markdown]
# Every block returned the shape it was given; only the LM head changed the width, from $d$ to
# $V$. The row of logits at the last position is the model's prediction for the character after
# "breaks?". The softmax turns it into probabilities; here are the five most likely:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Bar chart of the five most likely next characters after the line, with their probabilities according to the Shakespeare model."}}
probs = lib.softmax(logits[-1].astype(np.float64))
top = np.argsort(-probs, kind="stable")[:5]
for i in top:
    print(f"{label(tokenizer.token(i))!s:3} {probs[i]:.3f}")
print(f"the probabilities of all {V} characters sum to {probs.sum():.6f}")

if not GRADING:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([f"{label(tokenizer.token(i))}" for i in top], probs[top], color="tab:blue")
    ax.set_ylabel("probability")
    ax.set_xlabel("next character (↵ newline, ␣ space)")
    ax.set_title(f"Top 5 of {V}: what comes after {line.split()[-1]!r}?")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## From a distribution to text
#
# Generating text repeats the pass: choose a character from the distribution, append it to the
# input, run the model again. **Greedy** decoding always takes the most likely character; sampling
# draws one at random with the model's probabilities. `lib.generate` runs that loop (and keeps the
# keys and values of earlier positions in a cache, so each step only computes the new position;
# chapters 4 and 6 explain both).

# %%
prompt = "ROMEO:\n"
prompt_ids = tokenizer.encode(prompt)
greedy = lib.generate(model, prompt_ids, 120, temperature=0)
sampled = lib.generate(model, prompt_ids, 120, temperature=1.0, rng=np.random.default_rng(1))
print("--- greedy ---")
print(tokenizer.decode(greedy))
print("\n--- sampled (temperature 1, seed 1) ---")
print(tokenizer.decode(sampled))

# %% [markdown]
# Greedy text is the same every time and tends to fall into loops; sampled text changes with the
# seed. How to steer between the two (temperature, top-k, top-p) is chapter 4.

# %% [markdown]
# ### The model in this page
#
# In the web book, the box below runs the same model in your browser: its forward pass rewritten
# in a few hundred lines of plain JavaScript (`book/live/model.js` in the repository), whose
# numbers the course's tests compare with `lib`'s. Type a prompt (try `ROMEO:`, one key at a
# time) and the bars follow every key; the sliders filter the distribution as chapter 4 explains,
# and "Generate" draws the same characters as `lib.generate` with the same seed.
#
# <div class="fp-live" data-prompt="ROMEO:">
# <p><em>The live model runs here in the web book served over http (<code>make serve</code>); opened from disk, or in a notebook, the page shows this line instead.</em></p>
# </div>

# %% [markdown]
# ## Two running examples
#
# The book works with two models, both loaded by `lib.load_pretrained`.
#
# **The toy.** A GPT-2 with one block ($L = 1$), width $d = 4$ and $h = 2$ attention heads, whose
# vocabulary has three tokens: "AI", "rocks" and an end-of-sequence token. It is small enough that
# chapter 5 prints *every* number of one forward pass, from the embedding rows to the final
# probabilities, so you can follow the arithmetic by hand.
#
# **The Shakespeare model.** The character-level model above: big enough to produce text with
# some of the shape of a play, small enough to run in NumPy on a laptop in a fraction of a second.
# Most figures in the book are drawn from its weights.

# %%
toy = lib.load_pretrained("toy")
for name, m in [("toy", toy), ("Shakespeare", model)]:
    c = m.config
    print(
        f"{name:12} L = {c.n_layer}  d = {c.d_model:3}  heads = {c.n_head}  V = {c.vocab_size:2}  "
        f"context = {c.n_ctx:3}  weights = {m.num_params():,}"
    )

toy_ids = toy.tokenizer.encode("AI rocks")
toy_names = {i: tok for tok, i in toy.tokenizer.vocab.items()}
toy_probs = lib.softmax(toy.forward(toy_ids)[-1].astype(np.float64))
print("\nthe toy after 'AI rocks':", {toy_names[i]: round(float(p), 3) for i, p in enumerate(toy_probs)})

# %% [markdown]
# ## How to use this book
#
# **Reading.** Each chapter is a page of prose, math, code and figures, and you can read the book
# without running anything. Every figure is drawn right after the code that computes it; on the
# web page that code is folded away under "Show code cell source". Some figures have controls (a
# slider, a drop-down): on the web page every setting was computed when the book was built, so
# they work without Python; in a notebook they are drawn live, by your own functions once you have
# written them.
#
# **Editions.** This web book comes in three editions, built from the same notebooks. The one for
# readers on their own, which you are probably reading, shows each exercise's task, what a correct
# answer returns on an example, and the solution folded under "Show solution". Courses that grade
# the exercises publish the class edition, which has the tasks and no solutions; the instructors'
# edition adds the grader's hidden tests.
#
# **Running.** Each page is a Jupyter notebook. The launch button at the top of each page (the
# rocket icon) opens it on Binder.
# <!-- class only -->
# In a course whose instructors have set up a JupyterHub, it opens it there.
# <!-- end class only -->
# (There is no Colab button: a Colab runtime has neither `lib` nor the grader.) To work on your
# own machine, clone the repository and use the `Makefile` (the README lists every command):
#
# - `make lab` creates the Python environment on first use and opens the chapters in JupyterLab;
# - `make book` builds this web book into `_build/html` (`make book-class` the class edition);
# - `make test` runs every test of the course, including the checks of every exercise.
#
# **Exercises and checks.** An exercise is a function whose docstring says, in this order, the
# **task**, the **shapes** of its inputs and output, a small **example**, and **hints**. Its body
# is `raise NotImplementedError()`; replace that with your code and run the cell, then run the cell
# right below it. That cell checks your function on a few inputs against `lib`'s answer and prints
# ✔, or one short message. When your output matches a mistake the course knows (a transposed
# matrix, positions off by one, a softmax over the wrong axis), the message names it and says
# what to look at. When a multi-step function is wrong, the message names the first intermediate
# result that differs. A function must also leave its arguments as it found them: the rest of the
# model still reads them (`x -= x.mean(...)` on an argument changes the caller's array, and a
# residual `x + f(x)` would then add the changed one), so the check fails a function that writes
# into an argument, even when the values it returns are right. Here is the check of
# `token_embedding`, the third exercise of chapter 1, at work: first given a wrong function, then
# `lib`'s own:


# %%
def token_embedding(ids, wte):
    return wte[:, ids]  # a classic slip: columns instead of rows


try:
    check("01-embeddings/token_embedding", token_embedding)
except CheckFailed as failure:
    print("✘", failure)


def token_embedding(ids, wte):
    return wte[ids]  # one row per token id


check("01-embeddings/token_embedding", token_embedding)

# %% [markdown]
# <!-- class only -->
# **Grading.** The check cell under an exercise is the visible half of the grader's test. When you
# submit a notebook, the grader runs the same functions on more inputs that you do not see: other
# shapes, other random seeds, float32 and float64 arrays. The check's own cases are of every kind
# the grader's are (batches, both precisions, every optional argument, the edge cases), so a ✔
# means full marks for a function that is right in general; one tailored to the visible examples
# fails. Build on your own functions and on what a chapter's setup cell imports for you: the
# grader runs your code with only those parts of `lib`, so a check fails at once if your function
# calls a `lib` function that does the exercise's work. Concept checks, where you set a
# variable to a letter, are graded at submission too; until you answer one, its check cell only
# reminds you that it is waiting. Before you submit, restart the kernel, run
# every cell, and run nbgrader's validation (`nbgrader validate <notebook>.ipynb` in a terminal,
# or the Validate button in JupyterLab's assignment list), which executes the notebook the way
# the grader will.
# <!-- end class only -->
# <!-- reader only -->
# **On your own.** Nothing is submitted or graded: the checks are all the feedback there is, and
# they answer at once, as often as you run them. Their cases are of every kind a course's grader
# uses (batches, both precisions, every optional argument, the edge cases), so a ✔ means a
# function that is right in general, not one fitted to the example. Build on your own functions
# and on what a chapter's setup cell imports for you: a check fails at once if your function calls
# a `lib` function that does the exercise's work. In the web book, the place of each check shows
# what a correct function returns on the check's example, with the solution folded under "Show
# solution"; a concept check, where you pick a letter, has its answer and the reason for it
# folded under "Show the answer". Try first, then unfold. In a notebook (the book's launch button
# opens one), a concept check's cell says at once whether your letter is right, and why.
# <!-- end reader only -->
#
# ## The chapters
#
# 1. **Tokens and embeddings**: from text to ids, and from ids to one vector per token, with its
#    position.
# 2. **The transformer block**: normalisation, attention, the MLP and the residual stream; the
#    block that keeps the shape.
# 3. **The LM head**: from the last vector to logits and probabilities, and the loss that
#    measures them.
# 4. **Sampling and generation**: greedy decoding, temperature, top-k and top-p, and the loop
#    that writes text.
# 5. **Every number of one forward pass**: the toy model, worked through by hand.
# 6. **What a forward pass costs**: counting parameters, operations and memory, and why the
#    KV cache matters.
#
# The original transformer {cite}`vaswani2017attention` is the common ancestor of everything
# here; the chapters say where GPT-2 and later models such as Llama changed it.
