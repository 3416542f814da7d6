# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tokens and embeddings
#
# :::{admonition} In this chapter
# :class: note
# - **You will be able to** turn text into token ids and back, look up the vectors of a sequence
#   or a batch of sequences, add learned or sinusoidal positions, and explain why a model that only
#   looked tokens up could not tell "dog bites man" from "man bites dog".
# - **It assumes** the introduction, and NumPy: integer-array indexing, slicing, broadcasting.
# - **Time:** about 1.5 hours: 30 minutes of reading, an hour for six exercises and three
#   questions.
# :::
#
# A language model never reads text. It reads integers, one per token, and the first thing it does
# with each integer is replace it by a vector of $d$ numbers. Everything after that, every block,
# every attention head, the final distribution over the next token, works on those vectors.
#
# This chapter builds that first stage of the forward pass, from a string to an array of shape
# $(T, d)$, one row per token:
#
# $$\begin{aligned}
# \text{text} &\xrightarrow{\text{tokenizer}} (i_0, \dots, i_{T-1}) \\
# &\xrightarrow{\;E,\;P\;} x_t = E_{i_t} + P_t \in \mathbb{R}^{d}.
# \end{aligned}$$
#
# You will write the tokenizer's two directions (`encode`, `decode`), the token embedding lookup,
# the learned position embedding, their sum, and the fixed sinusoidal positions of the original
# transformer. At the end, your `embed` computes exactly what the course's Shakespeare model feeds
# its first block.
#
# :::{admonition} How the checks work
# :class: tip
# - Each exercise is a function whose body is `raise NotImplementedError()`. Replace that line with
#   your code, run the cell, then run the check cell right below it. It prints ✔, or a short
#   message that names the mistake it recognises (a transposed table, positions off by one, ...)
#   or the first intermediate result that differs.
# <!-- class only -->
# - The check cell is the visible half of the grader's test. When you submit, the grader runs the
#   same function on more inputs that you do not see: other shapes, other seeds, float32 and
#   float64. A function that only reproduces the visible example fails there.
# - Concept checks are answered by setting a variable to a letter; the check cell only records the
#   answer, which is graded when you submit.
# - Before you submit, restart the kernel and run every cell, then run nbgrader's validation, which
#   executes the notebook the way the grader does: `nbgrader validate embeddings.ipynb` in a
#   terminal in this folder, or the **Validate** button next to the assignment in JupyterLab's
#   assignment list.
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
tokenizer = model.tokenizer
wte, wpe = model.params["wte"], model.params["wpe"]
model


# %%
def label(ch):
    """A printable name for a character: newline and space would be invisible in a figure."""
    return {"\n": "↵", " ": "␣"}.get(ch, ch)


# %% [markdown]
# ## From text to ids
#
# A **vocabulary** is a finite list of tokens, and a token's **id** is its index in that list, an
# integer in $\{0, \dots, V-1\}$ where $V$ is the vocabulary size. Real models use subword tokens
# (GPT-2 has tens of thousands of them {cite}`radford2019language`, counted below); the course's
# Shakespeare model reads one *character* at a time, so its vocabulary is simply the set of
# characters that occur in its training text. That keeps $V$ small and every id easy to read.
#
# Two dictionaries describe a character vocabulary: `stoi` ("string to integer") maps a character
# to its id, and `itos` maps it back. Here is a vocabulary built from one line:

# %%
line = "To be, or not to be, that is the question."
chars = sorted(set(line))  # every distinct character, in a fixed order
stoi = {ch: i for i, ch in enumerate(chars)}
itos = {i: ch for ch, i in stoi.items()}
print(f"V = {len(chars)}:", "".join(label(c) for c in chars))
print(stoi)

# %% [markdown]
# **Encoding** replaces each character by its id; **decoding** does the reverse. The two must be
# inverses: `decode(encode(text)) == text` for every text the vocabulary can spell.


# %% nbgrader={"grade": false, "grade_id": "encode-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encode(text, stoi):
    """Turn a string into an array of token ids, one per character.

    Task: look up every character of `text` in the vocabulary `stoi` (a dict from character to
        id) and return the ids in the order of the text, as an integer NumPy array.
    Shapes: text, a str of length T; stoi, a dict -> int64 array of shape (T,)
    Example: with stoi = {" ": 0, "b": 1, "e": 2, "o": 3, "t": 4},
        encode("to be", stoi) -> array([4, 3, 0, 1, 2])
    Hints: a list comprehension over the characters, then np.array(..., dtype=np.int64).
        A character missing from stoi must raise a KeyError (what stoi[ch] raises) or a ValueError
        whose message names the character: never invent an id for it.
    """
    ### BEGIN SOLUTION
    return np.array([stoi[ch] for ch in text], dtype=np.int64)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "encode", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("01-embeddings/encode", encode)


# %% nbgrader={"grade": false, "grade_id": "decode-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def decode(ids, itos):
    """Turn an array of token ids back into the string it encodes.

    Task: look up every id in `itos` (a dict from id to character) and join the characters, in
        order, into one string.
    Shapes: ids, an int array of shape (T,); itos, a dict -> str of length T
    Example: with itos = {0: " ", 1: "b", 2: "e", 3: "o", 4: "t"},
        decode(np.array([4, 3, 0, 1, 2]), itos) -> "to be"
    Hints: the ids are NumPy integers; int(i) turns one into a plain int if a dict lookup
        complains. "".join(...) glues a sequence of strings together with nothing in between.
    """
    ### BEGIN SOLUTION
    return "".join(itos[int(i)] for i in ids)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "decode", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("01-embeddings/decode", decode)

# %% [markdown]
# The shipped model's tokenizer does the same with its own vocabulary, the characters of the
# complete works. `lib`'s `Tokenizer` wraps the Hugging Face `tokenizers` library, but for this
# model its table is exactly a `stoi` dictionary:

# %%
vocab = tokenizer.vocab  # character -> id: the model's stoi
model_itos = {i: ch for ch, i in vocab.items()}
print(f"V = {tokenizer.vocab_size} characters:")
print("".join(label(model_itos[i]) for i in range(tokenizer.vocab_size)))

verse = "But, soft! what light through yonder window breaks?"
ids = tokenizer.encode(verse)
print("\nids:", ids)
print("same as a plain dictionary lookup:", np.array_equal(ids, [vocab[ch] for ch in verse]))
print("decode(encode(text)) == text:", tokenizer.decode(ids) == verse)

# %% [markdown]
# ### A character the vocabulary does not have
#
# What should `encode` do with a character it has never seen? With a plain dictionary, the lookup
# fails; `lib`'s tokenizer refuses too, and says where:

# %%
text = "Zounds, to be"
try:
    [stoi[ch] for ch in text]  # built from one line, stoi has no "Z"
except KeyError as err:
    print(f"plain dictionary, {text!r}:\n  KeyError {err}")
text = "A naïve café"  # printed: on the web page this code is folded away
try:
    tokenizer.encode(text)
except ValueError as err:
    print(f"lib's tokenizer, {text!r}:\n  ValueError: {err}")

# %% [markdown]
# A tokenizer needs a *policy* for this, because a model can only ever receive ids in
# $\{0, \dots, V-1\}$. There are three common ones:
#
# 1. **Refuse.** Raise an error, as above. Nothing is hidden, but the model cannot read such text
#    at all. This course's tokenizer does this, because its model was trained on a closed set of
#    characters.
# 2. **An unknown token.** Reserve one id, often written `<unk>`, and map every unknown character
#    to it. The model then reads *something*, but the information is gone: `decode` cannot give
#    back "ï" and "é", and two different unknown characters look identical to the model.
# 3. **Make unknowns impossible.** Start the vocabulary from the 256 possible bytes and encode the
#    text as UTF-8, so any string at all can be spelled, at worst one byte per token. GPT-2's
#    byte-level BPE does this {cite}`radford2019language`, and merges frequent byte sequences into
#    longer tokens so that common words cost one id.
#
# Whatever the policy, the rest of the model never sees characters: from here on, only ids.

# %% [markdown]
# ## The embedding matrix
#
# The model owns a matrix $E \in \mathbb{R}^{V \times d}$ with one row per token, learned during
# training along with every other weight. The vector of token $i$ is row $i$:
#
# $$x_t = E_{i_t} \qquad (t = 0, \dots, T-1).$$
#
# In GPT-2's checkpoints this matrix is called `wte` ("word token embedding"). Looking up a row is
# the same as multiplying a **one-hot** vector by the matrix: if $e_i \in \mathbb{R}^V$ is $1$ in
# place $i$ and $0$ elsewhere, then $e_i^\top E = E_i$, because the product adds up the rows of
# $E$ weighted by the entries of $e_i$, and only row $i$ has weight one. So the embedding layer is
# an ordinary linear layer whose input happens to be one-hot. Nobody computes it as a product,
# though: the product does $V \cdot d$ multiply-adds per token just to copy out $d$ numbers.

# %%
one_hot = np.eye(tokenizer.vocab_size, dtype=wte.dtype)[ids]  # (T, V): a single 1 per row
print("one-hot:", one_hot.shape, " wte:", wte.shape, " one-hot @ wte:", (one_hot @ wte).shape)
print("one-hot @ wte == wte[ids]:", np.allclose(one_hot @ wte, lib.token_embedding(ids, wte)))


# %% nbgrader={"grade": false, "grade_id": "token_embedding-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def token_embedding(ids, wte):
    """Look up the embedding vector of every token id.

    Task: return row ids[t] of the embedding matrix wte for every id, keeping the shape of ids
        (a single sequence or a batch of sequences) and adding an axis of size d at the end.
    Shapes: ids, int (T,) or (B, T); wte (V, d) -> (T, d) or (B, T, d), same dtype as wte
    Example: wte = np.array([[0., 1.], [2., 3.], [4., 5.]])   # V = 3, d = 2
        token_embedding(np.array([2, 0]), wte) -> array([[4., 5.], [0., 1.]])
    Hints: token i is a ROW of wte, not a column. Indexing an array with an integer array
        picks rows: a[[2, 0]] is rows 2 and 0 of a, and an index array of shape (B, T) gives a
        result of shape (B, T, ...). No loop is needed.
    """
    ### BEGIN SOLUTION
    return wte[ids]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "token_embedding", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("01-embeddings/token_embedding", token_embedding)

# %% [markdown]
# Here is the shipped model's whole embedding matrix. It is drawn transposed, one *column* per
# character in id order (newline and space, punctuation and digits, capitals, lower case), with
# the $d$ features running down. The table and the figure after it, and the explorer at the end of
# the chapter, look at single characters and at how their rows compare.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Heatmap of the Shakespeare model's token embedding matrix: one column per character of the vocabulary in id order, with the blocks of capitals A–Z and lower-case letters a–z marked, and one row per embedding feature; colour is the value of the weight."}}
if not GRADING:
    V, d = wte.shape
    limit = np.abs(wte).max()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    image = ax.imshow(wte.T, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    for name, member in [("A–Z", str.isupper), ("a–z", str.islower)]:  # label the two alphabets
        columns = [i for i in range(V) if member(model_itos[i])]
        ax.text((columns[0] + columns[-1]) / 2, d + 2, name, ha="center", va="top")
        for edge in (columns[0] - 0.5, columns[-1] + 0.5):
            ax.axvline(edge, color="k", lw=0.6)
    ax.set_xticks([])
    ax.set_xlabel("token id: ↵ ␣, punctuation, digits first", labelpad=20)
    ax.set_ylabel(f"feature (d = {d})")
    ax.set_title("wte, transposed: one column per character")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="weight")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# One number in that picture means little on its own: the model is free to rotate its feature
# space, and nothing forces feature 17 to mean anything a person would name. What training does
# shape are the *relations between rows*. Two tokens that the model should treat alike (because
# they occur in similar contexts, or, since this model reuses the same rows for its predictions,
# are predicted in similar contexts) tend to end up with rows that point in similar directions. The
# usual measure is the **cosine similarity**, the dot product of the two rows after scaling each to
# length one:
#
# $$\cos(u, v) = \frac{u \cdot v}{\lVert u \rVert \, \lVert v \rVert} \in [-1, 1].$$

# %%
unit = wte / np.linalg.norm(wte, axis=1, keepdims=True)
similarity = unit @ unit.T  # (V, V): every pair of tokens at once


def nearest(i, k=5):
    """The k tokens whose rows are most similar to token i's (excluding i) and their cosines."""
    order = [j for j in np.argsort(-similarity[i], kind="stable") if j != i][:k]
    return [(model_itos[j], float(similarity[i, j])) for j in order]


print("token  nearest neighbours by cosine similarity")
for ch in ["e", "o", "T", "s", ",", ".", "?"]:
    row = "  ".join(f"{label(n)} {s:+.2f}" for n, s in nearest(vocab[ch]))
    print(f"  {label(ch)!s:4} {row}")

# %% [markdown]
# The table is easier to judge next to groups of characters that a reader of English would put
# together. The figure below shows the cosine similarity between every pair of a few vowels,
# consonants, capitals and punctuation marks; the printed averages compare pairs inside a group
# with pairs from different groups.

# %% tags=["hide-input"] mystnb={"image": {"alt": "Heatmap of cosine similarities between the embedding rows of twenty characters grouped as vowels, consonants, capitals and punctuation, with the groups separated by lines."}}
groups = {"vowels": "aeiou", "consonants": "tnsrh", "capitals": "AEIOT", "punctuation": ",.;!?"}
picked = [vocab[ch] for chars_ in groups.values() for ch in chars_]
block = similarity[np.ix_(picked, picked)]
group_of = np.repeat(np.arange(len(groups)), [len(g) for g in groups.values()])
same = group_of[:, None] == group_of[None, :]
off_diagonal = ~np.eye(len(picked), dtype=bool)
print(f"mean cosine within a group:      {block[same & off_diagonal].mean():+.3f}")
print(f"mean cosine between groups:      {block[~same].mean():+.3f}")
print(f"mean cosine over all token pairs: {similarity[~np.eye(len(similarity), dtype=bool)].mean():+.3f}")

if not GRADING:
    fig, ax = plt.subplots(figsize=(5, 4.4))
    image = ax.imshow(block, cmap="RdBu_r", vmin=-1, vmax=1)
    names = [label(model_itos[i]) for i in picked]
    ax.set_xticks(range(len(picked)), names)
    ax.set_yticks(range(len(picked)), names)
    for edge in np.cumsum([len(g) for g in groups.values()])[:-1] - 0.5:
        ax.axhline(edge, color="k", lw=0.8)
        ax.axvline(edge, color="k", lw=0.8)
    ax.set_title("Cosine similarity of embedding rows")
    fig.colorbar(image, ax=ax, fraction=0.046, label="cosine")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ### The same matrix at the other end
#
# At the end of the forward pass (chapter 3), the model turns its final vector $h$ into one score
# per token, a vector of $V$ **logits**. That takes a matrix of shape $(d, V)$. Many models, GPT-2
# and the Shakespeare model among them, do not learn a separate one: they reuse the embedding
# matrix, transposed, and compute $h E^\top$. This is called **tying** the embeddings
# {cite}`press2017using`: a token's score is the dot product of $h$ with that token's own
# embedding row.

# %% [markdown]
# **Concept check.** The Shakespeare model ties its output layer to `wte`: the score of token $v$
# is $h \cdot E_v$. Suppose training had left two characters with exactly the same row of `wte`.
# What follows for the model's predictions?
#
# - (a) The two characters get the same score at every position, whatever $h$ is: the model can
#   never make one of them more likely than the other.
# - (b) Nothing: the position embeddings keep the two apart at the output.
# - (c) Nothing: the final LayerNorm separates the two rows before the scores are computed.
# - (d) The model can no longer read either character as input, only predict it.

# %% nbgrader={"grade": false, "grade_id": "q_tied-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_tied = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_tied = "a"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_tied", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("01-embeddings/q_tied", answer_q_tied)

# %% [markdown]
# Tying also saves a whole matrix, $V \cdot d$ weights. Here is what that is in the shipped model
# and in GPT-2 small, whose vocabulary is far larger:

# %%
for name, config in [("Shakespeare", model.config), ("GPT-2 small", lib.Config.gpt2())]:
    print(
        f"{name:12} V = {config.vocab_size:6,}  d = {config.d_model:4}  tying saves V*d = {config.vocab_size * config.d_model:,} weights"
    )
saved = model.config.vocab_size * model.config.d_model
print(
    f"The Shakespeare model has {model.num_params():,} weights; untied it would have {model.num_params() + saved:,}."
)

# %% [markdown]
# ## Where is each token? Positions
#
# The token embedding is a pure lookup, and that has a consequence. In "to be, or not to be" the
# letter "o" appears four times, and all four get exactly the same vector:

# %%
hamlet = "to be, or not to be"
hamlet_ids = tokenizer.encode(hamlet)
rows = lib.token_embedding(hamlet_ids, wte)
where_o = [t for t, ch in enumerate(hamlet) if ch == "o"]
print("positions of 'o':", where_o)
print("their rows are identical:", all(np.array_equal(rows[t], rows[where_o[0]]) for t in where_o))

# %% [markdown]
# The blocks that come next mix the vectors of different positions with **attention**
# (chapter 2), whose weights are computed from the vectors' *contents*. Permute the input vectors
# and, apart from the causal mask, attention just permutes its outputs: it has no notion of
# "first" or "third". So the model needs the position of each token written somewhere. (The causal
# mask, which lets each token see only earlier ones, leaks a little order, but models do far better
# with an explicit position signal.)

# %% [markdown]
# **Concept check.** Imagine a model with no position information at all, whose attention lets
# every token read every other (no causal mask). It reads the word "stop", then the word "pots".
# How do its outputs compare?
#
# - (a) They differ everywhere, because the lookup of "s" gives a different row when "s" comes
#   first.
# - (b) They differ, because attention weights depend on how far apart two tokens are.
# - (c) The model cannot run: a sequence without positions has no order to process.
# - (d) Each letter gets exactly the same output vector in both words, only in another order: the
#   model cannot tell the two words apart.

# %% nbgrader={"grade": false, "grade_id": "q_positions-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_positions = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_positions = "d"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_positions", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("01-embeddings/q_positions", answer_q_positions)

# %% [markdown]
# ### Learned positions
#
# GPT-2's answer {cite}`radford2019language` is a second table, $P \in \mathbb{R}^{n_\text{ctx}
# \times d}$ (`wpe`, "word position embedding"), with one learned row per position
# $0, 1, \dots, n_\text{ctx} - 1$. The vector that enters the first block is the sum
#
# $$x_t = E_{i_t} + P_t .$$
#
# Adding, rather than concatenating, keeps the width at $d$; during training the model can learn
# to keep the two kinds of information in different directions of the same space. The table has
# exactly $n_\text{ctx}$ rows, so a model with learned positions cannot read a longer sequence:
# there is no row to look up.

# %%
print("wpe:", wpe.shape, f"-> at most n_ctx = {model.config.n_ctx} positions")
try:
    lib.position_embedding(model.config.n_ctx + 1, wpe)
except ValueError as err:
    print("ValueError:", err)


# %% nbgrader={"grade": false, "grade_id": "position_embedding-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def position_embedding(n_tokens, wpe):
    """The learned position vectors of a sequence of n_tokens tokens.

    Task: position t gets row t of the table wpe, for t = 0, 1, ..., n_tokens - 1. Return those
        rows, in order.
    Shapes: n_tokens, an int T with 1 <= T <= n_ctx; wpe (n_ctx, d) -> (T, d), same dtype as wpe
    Example: wpe = np.array([[0., 1.], [2., 3.], [4., 5.], [6., 7.]])   # n_ctx = 4, d = 2
        position_embedding(3, wpe) -> array([[0., 1.], [2., 3.], [4., 5.]])
    Hints: positions count from 0, like Python indices. One slice of rows does it.
    """
    ### BEGIN SOLUTION
    return wpe[:n_tokens]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "position_embedding", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("01-embeddings/position_embedding", position_embedding)

# %% [markdown]
# ### A batch of sequences
#
# A model usually processes several sequences at once, stacked into a **batch** of ids of shape
# $(B, T)$: $B$ sequences of $T$ tokens each. Nothing about the embedding changes. Indexing with
# an array of ids keeps that array's shape and appends the feature axis, so the lookup gives
# $(B, T, d)$. The positions are the same for every sequence of the batch, one row per position:
# a $(T, d)$ array. NumPy **broadcasting** lines shapes up from the right, so $(B, T, d) + (T, d)$
# adds the same $(T, d)$ block to each of the $B$ sequences.

# %%
batch = np.stack([tokenizer.encode("to be, or not"), tokenizer.encode("what's in a n")])  # (B, T)
T = batch.shape[-1]
tok = lib.token_embedding(batch, wte)
pos = lib.position_embedding(T, wpe)
print("ids", batch.shape, "-> token rows", tok.shape, "+ position rows", pos.shape, "=", (tok + pos).shape)
print(
    "each sequence got the same positions:",
    all(np.allclose((tok + pos)[b] - tok[b], pos) for b in range(len(batch))),
)

# %% [markdown]
# **Concept check.** A batch `ids` of shape $(B, T) = (4, 16)$ is embedded with
# `wte[ids] + wpe[:len(ids)]`. What happens?
#
# - (a) The right result: `len(ids)` is the sequence length.
# - (b) A `(4, d)` array: one vector per sequence.
# - (c) An error: `len(ids)` is $B = 4$, and `(4, 16, d) + (4, d)` cannot broadcast. With $B = T$
#   the same line would run, and silently give every token of sequence $b$ the position row $b$.
# - (d) The token rows alone: slicing `wpe` past the batch gives an empty array, which adds nothing.

# %% nbgrader={"grade": false, "grade_id": "q_batch_shape-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
answer_q_batch_shape = ...  # "a", "b", "c" or "d"
### BEGIN SOLUTION
answer_q_batch_shape = "c"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q_batch_shape", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("01-embeddings/q_batch_shape", answer_q_batch_shape)


# %% [markdown]
# Now put the two lookups together.


# %% nbgrader={"grade": false, "grade_id": "embed-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def embed(ids, wte, wpe):
    """Token embeddings plus learned position embeddings: the input of the first block.

    Task: x[..., t, :] = wte[ids[..., t]] + wpe[t] for every position t of every sequence.
    Shapes: ids, int (T,) or (B, T); wte (V, d); wpe (n_ctx, d) -> (T, d) or (B, T, d)
    Example: wte = np.array([[0., 1.], [2., 3.], [4., 5.]])
        wpe = np.array([[10., 20.], [30., 40.], [50., 60.]])
        embed(np.array([2, 0]), wte, wpe) -> array([[14., 25.], [30., 41.]])
    Hints: call your token_embedding and position_embedding. The sequence length T is the LAST
        axis of ids (ids.shape[-1]); len(ids) is the batch size when ids is (B, T). A (T, d) array
        broadcasts over a leading batch axis by itself.
    """
    ### BEGIN SOLUTION
    return token_embedding(ids, wte) + position_embedding(ids.shape[-1], wpe)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "embed", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("01-embeddings/embed", embed, token_embedding=token_embedding, position_embedding=position_embedding)

# %% [markdown]
# This is the first stage of the real forward pass. `model.forward(ids, trace=True)` records every
# intermediate by name (chapter 2 uses many of them); its first three entries are the token rows,
# the position rows and their sum, the stream that enters block 0:

# %%
logits, trace = model.forward(hamlet_ids, trace=True)
for name in ["embed.tok", "embed.pos", "embed.out"]:
    print(f"{name:10} {trace[name].shape}")
print("embed.out == wte[ids] + wpe[:T]:", np.array_equal(trace["embed.out"], lib.embed(hamlet_ids, wte, wpe)))

# %% [markdown]
# ## Sinusoidal positions
#
# The original transformer {cite}`vaswani2017attention` did not learn its position table; it wrote
# one down. Columns come in pairs $(2j, 2j+1)$, and pair $j$ holds a sine and a cosine of the
# position $m$ at its own frequency $\omega_j$:
#
# $$\begin{aligned}
# P_{m,\,2j} &= \sin(\omega_j m), \\
# P_{m,\,2j+1} &= \cos(\omega_j m), \\
# \omega_j &= 10000^{-2j/d}, \\
# j &= 0, \dots, \tfrac{d}{2} - 1.
# \end{aligned}$$
#
# Think of each pair as the hand of a clock: the first pair turns by one radian per position, the
# last barely moves over thousands of positions, and together the $d/2$ hands give every position
# a distinct reading. There is nothing to learn and no longest sequence: the formula works for any
# $m$. And because moving $k$ positions turns every hand by a fixed angle $\omega_j k$, the dot
# product of two position vectors depends only on how far apart they are:
#
# $$\begin{aligned}
# P_m \cdot P_n &= \sum_{j} \big(\sin\omega_j m \,\sin\omega_j n \\
# &\qquad\quad + \cos\omega_j m\,\cos\omega_j n\big) \\
# &= \sum_j \cos\big(\omega_j (m - n)\big).
# \end{aligned}$$


# %% nbgrader={"grade": false, "grade_id": "sinusoidal_positions-answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sinusoidal_positions(n_tokens, d, base=10000.0):
    """The fixed sinusoidal position table of the original transformer.

    Task: for positions m = 0, ..., n_tokens - 1 and pairs j = 0, ..., d/2 - 1, fill
        P[m, 2j] = sin(m / base**(2j/d)) and P[m, 2j+1] = cos(m / base**(2j/d)).
        The original transformer's base is 10000 (the default); base can be any real number.
    Shapes: n_tokens, an int T; d, an even int; base, a float -> (T, d), float64
    Example: sinusoidal_positions(2, 4) ->
        [[0,      1,      0,         1        ],
         [sin(1), cos(1), sin(0.01), cos(0.01)]]     # pair j = 1: 10000**(2/4) = 100
    Hints: build all the angles at once as a (T, d/2) array: positions as a column (T, 1)
        divided by the row base**(2j/d) of shape (1, d/2), with 2j = np.arange(0, d, 2). Then
        fill an empty (T, d) table: P[:, 0::2] takes the even columns, P[:, 1::2] the odd ones.
    """
    ### BEGIN SOLUTION
    angles = np.arange(n_tokens)[:, None] / base ** (np.arange(0, d, 2) / d)  # (T, d/2)
    table = np.empty((n_tokens, d))
    table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
    return table
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "sinusoidal_positions", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["raises-exception"]
check("01-embeddings/sinusoidal_positions", sinusoidal_positions)

# %% [markdown]
# A few columns of the table for the Shakespeare model's width $d$, each over about four of its
# periods (or over the whole context, if that is shorter). The period of pair $j$ is
# $2\pi / \omega_j$ positions:

# %% tags=["hide-input"] mystnb={"image": {"alt": "Four small line plots, one per column of the sinusoidal position table, each over about four of its periods: a sine wave whose period grows from a few positions in the first column to hundreds in the last."}}
n_ctx, d = model.config.n_ctx, model.config.d_model
sinusoid = lib.sinusoidal_positions(n_ctx, d)
if not GRADING:
    columns = [0, d // 8, d // 4, d // 2]
    fig, axes = plt.subplots(len(columns), 1, figsize=(5.5, 5.4))
    for i, (ax, column) in enumerate(zip(axes, columns, strict=True)):
        period = 2 * np.pi * 10000 ** (column / d)
        span = min(n_ctx, int(np.ceil(4 * period)))  # about four turns of this clock
        ax.plot(np.arange(span), sinusoid[:span, column], lw=1.2, color=f"C{i}")
        ax.set_ylim(-1.2, 1.2)
        ax.set_yticks([-1, 0, 1])
        ax.set_title(f"column {column}: period {period:.0f} positions", fontsize=9, loc="left")
    axes[-1].set_xlabel("position m")
    fig.supylabel("P[m, column]")
    fig.suptitle("Each pair is a clock at its own speed")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# How do the learned positions of the Shakespeare model compare? Below, each heatmap shows the
# cosine similarity between every pair of position vectors: learned rows of `wpe` on the left, the
# sinusoidal table of the same size on the right. For the sinusoids the picture can only depend on
# $m - n$, so it is constant along every diagonal. The learned table has no such constraint; the
# printed averages show whether training made neighbouring positions more alike than distant ones.


# %%
def cosine_matrix(table):
    unit_rows = table / np.linalg.norm(table, axis=1, keepdims=True)
    return unit_rows @ unit_rows.T


learned_sim, sinusoid_sim = cosine_matrix(wpe.astype(np.float64)), cosine_matrix(sinusoid)
distance = np.abs(np.arange(n_ctx)[:, None] - np.arange(n_ctx)[None, :])
for name, sim in [("learned", learned_sim), ("sinusoidal", sinusoid_sim)]:
    near, far = sim[distance == 1].mean(), sim[distance >= n_ctx // 4].mean()
    print(f"{name:10}  neighbours (|m-n| = 1): {near:+.3f}   far apart (|m-n| >= {n_ctx // 4}): {far:+.3f}")

# %% tags=["hide-input"] mystnb={"image": {"alt": "Two heatmaps side by side of cosine similarity between position vectors, position against position: on the left the learned position embeddings of the Shakespeare model, on the right sinusoidal positions of the same size, which are constant along each diagonal."}}
if not GRADING:
    fig, axes = plt.subplots(1, 2, figsize=(5.5, 3.1))
    for ax, sim, title in [(axes[0], learned_sim, "learned (wpe)"), (axes[1], sinusoid_sim, "sinusoidal")]:
        image = ax.imshow(sim, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(title)
        ax.set_xlabel("position n")
    axes[0].set_ylabel("position m")
    fig.colorbar(image, ax=axes, fraction=0.03, label="cos(P_m, P_n)")
    plt.show()

# %% [markdown]
# ## A preview: rotary positions
#
# Most recent models, Llama {cite}`touvron2023llama` among them, add no position vector at all:
# the stream entering block 0 is just the token rows. Instead, **rotary position embeddings**
# (RoPE) {cite}`su2021roformer` act inside attention. Each query and key vector is cut into pairs
# of features, and the pair $j$ of a vector at position $m$ is rotated by the angle $\omega_j m$,
# with the same frequencies as the sinusoids above. Rotating both vectors turns their dot product
# into a function of the *difference* of their positions only, which is exactly what attention
# compares. A quick demonstration with `lib.apply_rope`: one query and one key, placed at different
# pairs of positions:

# %%
query, key = rng.normal(size=(2, 1, 16))  # one vector each, 16 features (8 pairs)
print("  m    n   m-n   rotated query . rotated key")
for m, n in [(3, 0), (50, 47), (200, 197), (5, 0), (90, 85)]:
    score = (lib.apply_rope(query, [m]) @ lib.apply_rope(key, [n]).T).item()
    print(f"{m:3}  {n:3}  {m - n:4}   {score:+.6f}")

# %% [markdown]
# Equal offsets give equal scores, wherever the pair sits. Chapter 2 builds rotary positions into
# attention and explains why the rotation has this property.

# %% [markdown]
# ## Explore: one token's embedding and its neighbours
#
# Pick a character: the bars are its row of `wte`, and the list under them names the five
# characters whose rows are closest to it by cosine similarity. In a notebook the row is computed
# by your `token_embedding` once it works (by `lib`'s until then, and the title says which); on
# the web page every character was computed with `lib` when the book was built.


# %% tags=["hide-input"]
def embedding_row(i):
    """Row i of wte with the reader's token_embedding, or lib's while that is not written."""
    try:
        return np.asarray(token_embedding(np.array([i]), wte))[0], "your token_embedding"
    except NotImplementedError:
        return lib.token_embedding(np.array([i]), wte)[0], "lib.token_embedding (yours is not written yet)"
    except Exception as err:  # a bug in the reader's function should not break the figure
        return lib.token_embedding(np.array([i]), wte)[
            0
        ], f"lib.token_embedding (yours raised {type(err).__name__})"


def token_title(i):
    return f"{label(model_itos[i])} (id {i}): its row of wte, and the five characters nearest to it"


def neighbours_text(i):
    return "nearest by cosine: " + ", ".join(f"{label(ch)} {s:+.2f}" for ch, s in nearest(i))


def show_token(i):
    row, source = embedding_row(i)
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    ax.bar(np.arange(len(row)), row, width=1.0, color="tab:blue")
    ax.set_xlabel("feature")
    ax.set_title(f"{token_title(i)}\n[{source}]", fontsize=10)
    fig.tight_layout()
    plt.show()
    print(neighbours_text(i))


def token_state(i):
    row = lib.token_embedding(np.array([i]), wte)[0]
    limit = float(np.abs(wte).max())
    bars = bookkit.Bars(
        {"row of wte": row},
        ticks=range(0, len(row), 32),
        ymin=-limit,
        ymax=limit,
        xlabel="feature",
        ylabel="weight",
    )
    return bookkit.State(token_title(i), [bars, bookkit.Text(neighbours_text(i))])


if not GRADING:
    token = bookkit.Select(
        "i",
        [(f"{label(model_itos[i])} (id {i})", i) for i in range(tokenizer.vocab_size)],
        value=vocab["e"],
        label="token",
    )
    bookkit.explore([token], live=show_token, static=token_state)

# %% [markdown]
# ## Summary
#
# - A tokenizer maps text to ids in $\{0, \dots, V-1\}$ and back; it needs a policy for what it
#   cannot spell (refuse, an unknown token, or bytes).
# - The embedding matrix $E$ has one row per token; the lookup $E_{i}$ equals the one-hot product
#   $e_i^\top E$, and a tied model reuses $E^\top$ as its output layer.
# - A lookup knows nothing about order, so positions are added: a learned table $P$ (GPT-2, at
#   most $n_\text{ctx}$ positions), a fixed sinusoidal one, or, in modern models, a rotation inside
#   attention.
# - With a batch, ids $(B, T)$ become $(B, T, d)$, and the $(T, d)$ positions broadcast over the
#   batch.
#
# The next chapter follows this $(T, d)$ array through a transformer block, which returns an array
# of exactly the same shape.
