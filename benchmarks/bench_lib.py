"""lib against PyTorch on the same random GPT-2-small-shaped weights, in one run.

Prints, for prefill (last-position logits) at T = 128, 512, 1024 and for KV-cache decoding of 64
tokens after a 128-token prompt: each time, the ratio lib / torch, and the limits measured in this
same run (the least FLOPs that give the last position's logits / float32 GEMM rate for prefill;
weight bytes / memory bandwidth for decoding).
Targets: lib no slower than PyTorch at any T; decoding at >= 60% of the bandwidth limit.
"""

import argparse
import tempfile
import time

import numpy as np
import torch
import transformers

import lib

torch.set_num_threads(2)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_of_pair(a, b, repeats: int) -> tuple[float, float]:
    """Best times of ``a`` and ``b``, run alternately so a noisy moment hits both alike."""
    pairs = [(best_of(a, 1), best_of(b, 1)) for _ in range(repeats)]
    return min(p[0] for p in pairs), min(p[1] for p in pairs)


def gemm_rate(n: int = 2048) -> float:
    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    return 2 * n**3 / best_of(lambda: a @ b, 5)


def bandwidth(mib: int = 512) -> float:
    """Effective bytes/s of a float32 GEMV that streams ``mib`` MiB of weights."""
    rows = mib * 2**20 // 4 // 4096
    w = np.random.default_rng(0).standard_normal((rows, 4096), dtype=np.float32)
    x = np.ones(4096, np.float32)
    return w.nbytes / best_of(lambda: w @ x, 5)


def prefill_flops(c: lib.Config, T: int) -> float:
    """The least work for the last position's logits: every layer but the last runs on all T
    positions; the last needs keys and values of all of them, everything else for one."""
    d, ff = c.d_model, c.d_ff

    def layer(n_out: int) -> int:  # a layer whose outputs are wanted at its last n_out positions
        projections = 2 * T * d * 2 * d + 2 * n_out * (d * d + d * d + 2 * d * ff)  # k, v | q, o, MLP
        keys_seen = n_out * T - n_out * (n_out - 1) // 2  # causal: query at position p sees p + 1
        return projections + 2 * 2 * d * keys_seen  # q k^T and probs v

    return (c.n_layer - 1) * layer(T) + layer(1) + 2 * d * c.vocab_size  # + last-position head


def decode_lib(model, prompt, n):
    cache = model.new_cache()
    logits = model.forward(prompt, cache=cache, last_only=True)[-1]
    start = time.perf_counter()
    for _ in range(n):
        token = np.array([int(np.argmax(logits))])
        logits = model.forward(token, cache=cache, last_only=True)[-1]
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
    with tempfile.TemporaryDirectory() as tmp:
        lib.save_pretrained(model, tmp)
        hf = transformers.GPT2LMHeadModel.from_pretrained(tmp, torch_dtype=torch.float32).eval()
    rng = np.random.default_rng(0)

    flops_rate, bytes_rate = gemm_rate(), bandwidth()
    print(
        f"machine at the start: float32 GEMM {flops_rate / 1e9:.0f} GFLOP/s, GEMV bandwidth {bytes_rate / 1e9:.1f} GB/s\n"
    )
    print(f"{'prefill':<12}{'lib s':>9}{'torch s':>9}{'lib/torch':>11}{'limit s':>9}{'lib % of limit':>16}")
    for T in args.lengths:
        ids = rng.integers(0, config.vocab_size, size=T)
        with torch.inference_mode():
            ours, theirs = best_of_pair(
                lambda ids=ids: model.forward(ids, last_only=True),
                lambda ids=ids: hf(torch.tensor(ids[None]), logits_to_keep=1),
                args.repeats,
            )
        flops_rate = max(flops_rate, gemm_rate())  # the best the machine showed so far in this run
        limit = prefill_flops(config, T) / flops_rate
        print(
            f"T={T:<10}{ours:>9.3f}{theirs:>9.3f}{ours / theirs:>11.2f}{limit:>9.3f}{100 * limit / ours:>15.0f}%"
        )

    prompt = rng.integers(0, config.vocab_size, size=128)
    n = args.decode
    runs = [(decode_lib(model, prompt, n), decode_torch(hf, prompt, n)) for _ in range(3)]
    ours, theirs = min(r[0] for r in runs), min(r[1] for r in runs)
    bytes_rate = max(bytes_rate, bandwidth())  # the best the machine showed in this run
    weight_bytes = (
        model.num_params() - config.n_ctx * config.d_model
    ) * 4  # every weight but wpe, once a token
    limit_tps = bytes_rate / weight_bytes
    print(
        f"\n{'decode':<12}{'lib tok/s':>10}{'torch tok/s':>12}{'lib/torch time':>16}{'limit tok/s':>13}{'lib % of limit':>16}"
    )
    print(
        f"{n} tokens   {n / ours:>10.1f}{n / theirs:>12.1f}{ours / theirs:>16.2f}{limit_tps:>13.1f}"
        f"{100 * (n / ours) / limit_tps:>15.0f}%"
    )
    print(
        f"\nlimits use the best rates seen in this run: GEMM {flops_rate / 1e9:.0f} GFLOP/s, "
        f"bandwidth {bytes_rate / 1e9:.1f} GB/s"
    )


if __name__ == "__main__":
    main()
