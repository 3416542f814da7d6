"""lib's engine against PyTorch on the same random GPT-2-small-shaped weights, in one run.

Prints, for prefill (last-position logits) at T = 128, 512, 1024 and for KV-cache decoding of 64
tokens after a 128-token prompt: the times of ``lib.Engine`` and of PyTorch (``transformers``),
their ratio, and the limits measured in this same run (the least FLOPs that give the last
position's logits / float32 GEMM rate for prefill; weight bytes / memory bandwidth for decoding).
Beside them, the textbook path (``Model.forward``) and the engine with one of its changes undone
at a time (``lib/engine.py`` numbers them), so a reader sees what each one buys; and the share of
the prefill limit that the products with the weight matrices alone reach (``matmuls_alone``): the
ceiling BLAS sets at the model's own shapes, which a whole forward pass cannot pass; and the same
for decoding (``gemvs_alone``), a step's matrix-vector products. The last prefill column is the
share of a stricter limit (``prefill_roofline``): each step at the GEMM rate or at the speed of
memory, whichever is slower (the head's one row reads 154 MB). What is compared is timed in
turn, round after round (the best of each kept), so that a noisy moment of the machine meets all
of it alike; and each timed call starts from a machine at rest (``REST``): the threads of the
call before it, OpenBLAS's or PyTorch's, no longer spinning on the cores it needs.
Targets: the engine at most 0.9x PyTorch's prefill time and at >= 75% of the GEMM-bound limit;
decoding at >= 1.5x PyTorch's speed and >= 80% of the bandwidth limit.
"""

import argparse
import contextlib
import tempfile
import time

import numpy as np
import torch
import transformers

import lib
import lib.engine

torch.set_num_threads(2)


# Seconds before each timed call. After a product on its threads, an OpenBLAS worker spins for
# 2^28 cycles (about 0.1 s here) waiting for the next one, on a core the next call may need: a
# shared prefill timed right after one measured 10-20% slower than after a pause (2026-12-04).
REST = 0.2


def best_of(fn, repeats: int, rest: float = REST) -> float:
    times = []
    for _ in range(repeats):
        time.sleep(rest)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_of_each(fns: list, repeats: int) -> list[float]:
    """Best time of each function, run in turn so that a noisy moment hits them all alike."""
    rounds = [[best_of(fn, 1) for fn in fns] for _ in range(repeats)]
    return [min(column) for column in zip(*rounds, strict=True)]


def gemm_rate(n: int = 2048) -> float:
    """The machine's float32 GEMM rate, FLOP/s. The limits' rates are timed back to back (no
    ``REST``): threads woken from rest would lower them, and so raise the engine's share."""
    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    return 2 * n**3 / best_of(lambda: a @ b, 5, rest=0)


def bandwidth_probe(mib: int = 512):
    """A function that measures the memory's speed now: the effective bytes/s of a float32 GEMV
    that streams ``mib`` MiB of weights, the better of BLAS on its own threads and on one (on a
    busy machine, threads that wait for a descheduled one can stream less than one thread
    alone), timed back to back (no ``REST``), as decoding's steps follow each other."""
    rows = mib * 2**20 // 4 // 4096
    w = np.random.default_rng(0).standard_normal((rows, 4096), dtype=np.float32)
    x = np.ones(4096, np.float32)

    def rate() -> float:
        own = best_of(lambda: w @ x, 5, rest=0)
        with lib.engine._blas_threads(1):
            one = best_of(lambda: w @ x, 5, rest=0)
        return w.nbytes / min(own, one)

    return rate


def prefill_steps(c: lib.Config, T: int) -> list[tuple[int, int]]:
    """The least work for the last position's logits, step by step: (FLOPs, bytes of weights
    read) of each product with a weight matrix and of each layer's attention (no weights). Every
    layer but the last runs on all T positions; the last needs keys and values of all of them,
    everything else for one; then the head, for the last position."""
    d, ff = c.d_model, c.d_ff

    def layer(
        n_out: int,
    ) -> list[tuple[int, int]]:  # a layer whose outputs are wanted at its last n_out positions
        keys_seen = n_out * T - n_out * (n_out - 1) // 2  # causal: query at position p sees p + 1
        return [
            (2 * T * d * 2 * d, 2 * d * d * 4),  # k, v
            (2 * n_out * d * d, d * d * 4),  # q
            (2 * 2 * d * keys_seen, 0),  # q k^T and probs v
            (2 * n_out * d * d, d * d * 4),  # output projection
            (2 * n_out * 2 * d * ff, 2 * d * ff * 4),  # MLP
        ]

    steps = [step for _ in range(c.n_layer - 1) for step in layer(T)] + layer(1)
    return steps + [(2 * d * c.vocab_size, d * c.vocab_size * 4)]  # the head


def prefill_flops(c: lib.Config, T: int) -> float:
    return sum(flops for flops, _ in prefill_steps(c, T))


def prefill_roofline(c: lib.Config, T: int, flops_rate: float, bytes_rate: float) -> float:
    """The least time if the steps run in turn, each at the GEMM rate or at the speed of memory,
    whichever is slower: one row's products (the last layer's, the head's 154 MB for GPT-2 small)
    are bound by reading their weights, which ``prefill_flops / rate`` leaves out."""
    return sum(max(flops / flops_rate, weights / bytes_rate) for flops, weights in prefill_steps(c, T))


def _weight_products(layer: dict) -> tuple:
    """A GPT-2 block's weight matrices in the order a forward pass uses them (GPT-2's names)."""
    return layer["attn"]["c_attn"], layer["attn"]["c_proj"], layer["mlp"]["c_fc"], layer["mlp"]["c_proj"]


def matmuls_alone(engine: lib.Engine, T: int):
    """A prefill's products with the weight matrices alone, run as the engine runs them (from
    ``SHARED_FROM`` positions on, rows shared among the cores, BLAS on one thread each; fewer, on
    BLAS's own threads): every layer's four at T rows, but the last layer's output projection and
    MLP at its last row, and the head at that row. ``limit / its
    time`` is then the share of the limit that BLAS reaches at the model's own shapes, before any
    attention, norm or activation. Returns the function to time."""
    E, c = lib.engine, engine.config
    products = []  # (inputs, layer, outputs) of every product a prefill makes with a weight matrix
    for i, layer in enumerate(engine.params["h"]):
        n = 1 if i == c.n_layer - 1 else T
        for weights, rows in zip(_weight_products(layer), (T, n, n, n), strict=True):
            d_in, d_out = weights["w"].shape
            products.append((np.ones((rows, d_in), np.float32), weights, np.empty((rows, d_out), np.float32)))
    head = (np.ones((1, c.d_model), np.float32), engine.w_unembed, np.empty((1, c.vocab_size), np.float32))

    def run():
        with E._cores_share(T):
            for x, weights, out in products:
                E._each_block(
                    lambda rows, x=x, w=weights, out=out: E._linear_into(x[rows], w, out[rows]), len(x)
                )
            E._head_into(*head)

    return run


def gemvs_alone(engine: lib.Engine):
    """One decoding step's products with the weight matrices alone, run as the step runs them (one
    row as a vector, BLAS on its own threads, the engine's layout), and the head's. ``limit / its
    time`` is then the share of the bandwidth limit that BLAS's matrix-vector product reaches at
    the model's own shapes, before any attention, norm or activation. Returns the function to time."""
    matrices = [w for layer in engine.params["h"] for w in _weight_products(layer)]
    matrices.append({"w": engine.w_unembed})
    products = [
        (np.ones((1, m["w"].shape[0]), np.float32), m, np.empty((1, m["w"].shape[1]), np.float32))
        for m in matrices
    ]

    def run():
        for x, weights, out in products:
            lib.engine._linear_into(x, weights, out)

    return run


# ---- the engine with one change undone (numbers as in lib/engine.py) ---------------------------


def _masked_softmax_attention(q, k, v):
    """The textbook attention in place of the engine's chunked one (undoes changes 2 to 5, and 8 for
    the attention: it runs on BLAS's own threads)."""
    rep = q.shape[-3] // k.shape[-3]
    mask = lib.causal_mask(q.shape[-2], k.shape[-2])
    with lib.engine._blas_threads(lib.engine._CORES):
        return lib.scaled_dot_product_attention(q, lib.repeat_kv(k, rep), lib.repeat_kv(v, rep), mask)


@contextlib.contextmanager
def patched(module, name, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def textbook_layout(model) -> lib.Engine:
    """An engine on the model's own arrays, as loaded (undoes change 6)."""
    with patched(lib.engine, "streaming_order", lambda w, head=False: w):
        return lib.Engine(model)


def _into(textbook):
    """A textbook element-wise function in the engine's form ``(x, out) -> None``."""
    return lambda x, out, *args: np.copyto(out, textbook(x, *args))


UNDONE = {
    "2-5 textbook attention": lambda: patched(lib.engine, "causal_attention", _masked_softmax_attention),
    "7 textbook norms, activations": lambda: _textbook_element_wise(),
    "8 one core, BLAS's threads": lambda: patched(lib.engine, "SHARED_FROM", np.inf),
}


def undone_prefill(engine, ids, undo):
    with undo():
        return engine.prefill(ids)


@contextlib.contextmanager
def _textbook_element_wise():
    activations = {"tanh": _into(lib.gelu), "exact": _into(lib.gelu_exact), "silu": _into(lib.silu)}
    with patched(lib.engine, "ACTIVATIONS", activations):
        with patched(lib.engine, "_norm_into", _into(lib.norm)):
            with patched(lib.engine, "_in_cache_sized_pieces", lambda fn, *rows: fn(*rows)):
                yield


# ---- decoding --------------------------------------------------------------------------------


def decode_engine(engine, prompt, n):
    cache = engine.new_cache()
    logits = engine.prefill(prompt, cache)
    start = time.perf_counter()
    for _ in range(n):
        logits = engine.decode(int(np.argmax(logits)), cache)
    return time.perf_counter() - start


def decode_textbook(model, prompt, n):
    cache = model.new_cache()
    logits = model.forward(prompt, cache=cache)[-1]
    start = time.perf_counter()
    for _ in range(n):
        logits = model.forward(np.array([np.argmax(logits)]), cache=cache)[-1]
    return time.perf_counter() - start


@torch.inference_mode()
def decode_torch(hf, prompt, n):
    out = hf(torch.tensor(prompt[None]), use_cache=True, logits_to_keep=1)
    start = time.perf_counter()
    for _ in range(n):
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        out = hf(token, past_key_values=out.past_key_values, use_cache=True, logits_to_keep=1)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decode", type=int, default=64)
    args = parser.parse_args()

    config = lib.Config.gpt2()
    print(
        f"building random GPT-2-small weights ({config.n_layer} layers, d={config.d_model}, V={config.vocab_size})"
    )
    model = lib.Model(config, lib.init_params(config, seed=0))
    engine = lib.Engine(model)
    with tempfile.TemporaryDirectory() as tmp:
        lib.save_pretrained(model, tmp)
        hf = transformers.GPT2LMHeadModel.from_pretrained(tmp, dtype=torch.float32).eval()
    rng = np.random.default_rng(0)

    bandwidth = bandwidth_probe()
    flops_rate, bytes_rate = gemm_rate(), bandwidth()
    print(
        f"machine at the start: float32 GEMM {flops_rate / 1e9:.0f} GFLOP/s, GEMV bandwidth {bytes_rate / 1e9:.1f} GB/s\n"
    )
    print(
        f"{'prefill':<10}{'engine s':>9}{'torch s':>9}{'engine/torch':>14}{'limit s':>9}{'% of limit':>12}"
        f"{'textbook s':>12}{'matmuls alone, % of limit':>27}{'% of roofline':>15}"
    )
    undone = {}
    for T in args.lengths:
        ids = rng.integers(0, config.vocab_size, size=T)
        with torch.inference_mode():  # the ceiling in the same rounds, so the same moments
            ours, theirs, alone = best_of_each(
                [
                    lambda ids=ids: engine.prefill(ids),
                    lambda ids=ids: hf(torch.tensor(ids[None]), logits_to_keep=1),
                    matmuls_alone(engine, T),
                ],
                args.repeats,
            )
        textbook = best_of(lambda ids=ids: model.forward(ids)[-1], 2)
        variants = {  # the engine itself and with each change undone, in turn in each round
            "engine": lambda ids=ids: engine.prefill(ids),
            "1 every position": lambda ids=ids: engine.forward(ids)[-1],
            **{
                name: lambda ids=ids, undo=undo: undone_prefill(engine, ids, undo)
                for name, undo in UNDONE.items()
            },
        }
        undone[T] = dict(zip(variants, best_of_each(list(variants.values()), 3), strict=True))
        flops_rate = max(flops_rate, gemm_rate())  # the best the machine showed so far in this run
        limit = prefill_flops(config, T) / flops_rate
        print(
            f"T={T:<8}{ours:>9.3f}{theirs:>9.3f}{ours / theirs:>14.2f}{limit:>9.3f}{100 * limit / ours:>11.0f}%"
            f"{textbook:>12.3f}{100 * limit / alone:>26.0f}%"
            f"{100 * prefill_roofline(config, T, flops_rate, bytes_rate) / ours:>14.0f}%"
        )

    prompt = rng.integers(0, config.vocab_size, size=128)
    n = args.decode
    gemvs, laid_out_as_loaded = gemvs_alone(engine), textbook_layout(model)

    def general_path():
        with patched(lib.engine, "recording", lambda: True):  # decode takes the general path
            return decode_engine(engine, prompt, n)

    decoders = {  # each timed in every round, so that all meet the same moments of the machine
        "engine": lambda: decode_engine(engine, prompt, n),
        "torch": lambda: decode_torch(hf, prompt, n),
        "GEMVs alone": lambda: best_of(lambda: [gemvs() for _ in range(n)], 1),  # n steps' products
        "6 textbook layout": lambda: decode_engine(laid_out_as_loaded, prompt, n),
        "9 the general path for a token": general_path,
    }
    # the memory's speed in every round too: the limit from the same moments as the decoders
    rounds = [
        {**{name: decoder() for name, decoder in decoders.items()}, "bandwidth": bandwidth()}
        for _ in range(3)
    ]
    decoded = {name: min(r[name] for r in rounds) for name in decoders}
    ours, theirs, alone = decoded["engine"], decoded["torch"], decoded["GEMVs alone"]
    textbook = decode_textbook(model, prompt, n // 4) * 4
    bytes_rate = max(r["bandwidth"] for r in rounds)  # the best of the decoders' rounds
    weight_bytes = (
        model.num_params() - config.n_ctx * config.d_model
    ) * 4  # every weight but wpe, once a token
    limit_tps = bytes_rate / weight_bytes
    print(
        f"\n{'decode':<10}{'engine tok/s':>13}{'torch tok/s':>12}{'speed vs torch':>16}{'limit tok/s':>13}"
        f"{'% of limit':>12}{'textbook tok/s':>16}{'GEMVs alone, % of limit':>25}"
    )
    print(
        f"{n} tokens {n / ours:>13.1f}{n / theirs:>12.1f}{theirs / ours:>15.2f}x{limit_tps:>13.1f}"
        f"{100 * (n / ours) / limit_tps:>11.0f}%{n / textbook:>16.1f}{100 * (n / alone) / limit_tps:>24.0f}%"
    )
    # The memory's speed changes from one round to the next (this course's VM shows two modes, about
    # 35 and 48 GB/s): each round's shares against its own probe, beside the best-of-all above.
    print("each round, against the bandwidth measured right after it:")
    for r in rounds:
        limit_r = r["bandwidth"] / weight_bytes  # tok/s
        print(
            f"  {r['bandwidth'] / 1e9:5.1f} GB/s: engine {100 * (n / r['engine']) / limit_r:3.0f}%, "
            f"GEMVs alone {100 * (n / r['GEMVs alone']) / limit_r:3.0f}% of that round's limit"
        )

    print("\nwhat each change buys: the engine's time with one change undone, / the engine's time")
    print(f"{'undone':<32}" + "".join(f"{f'T={T}':>10}" for T in args.lengths) + f"{'decode':>10}")
    for name in ["1 every position", *UNDONE]:
        cells = "".join(
            f"{'not used':>10}"
            if name.startswith("8 ") and T < lib.engine.SHARED_FROM
            else f"{undone[T][name] / undone[T]['engine']:>9.2f}x"
            for T in args.lengths
        )
        print(f"{name:<32}{cells}{'':>10}")
    for name in ["6 textbook layout", "9 the general path for a token"]:
        print(f"{name:<32}{'':>{10 * len(args.lengths)}}{decoded[name] / ours:>9.2f}x")
    print(
        f"\nlimits use the best rates seen: GEMM {flops_rate / 1e9:.0f} GFLOP/s in this run, "
        f"bandwidth {bytes_rate / 1e9:.1f} GB/s in the decoders' rounds"
    )


if __name__ == "__main__":
    main()
