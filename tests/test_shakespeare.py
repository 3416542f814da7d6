"""The character-level Shakespeare model that ships in ``lib/models/shakespeare/``.

These tests need no network: they read the shipped files, re-measure the held-out loss with
``lib`` and compare ``lib`` with PyTorch when PyTorch is installed.
"""

import copy
import json
import socket
from pathlib import Path

import numpy as np
import pytest

import lib

MODEL_DIR = Path(lib.__file__).parent / "models" / "shakespeare"
PROMPT = "ROMEO.\n"


@pytest.fixture(scope="module")
def model():
    return lib.load_pretrained("shakespeare")


@pytest.fixture(scope="module")
def facts():
    return json.loads((MODEL_DIR / "training.json").read_text())


@pytest.fixture(scope="module")
def heldout():
    return (MODEL_DIR / "heldout.txt").read_text(encoding="utf-8")


def check_windows(model, heldout: str, facts: dict) -> np.ndarray:
    """The held-out windows ``training.json`` measured: evenly spaced over ``heldout.txt``."""
    check = facts["heldout_check"]
    ids = model.tokenizer.encode(heldout)
    starts = np.linspace(0, len(ids) - check["window_chars"], check["windows"]).astype(int)
    return np.stack([ids[s : s + check["window_chars"]] for s in starts])


def heldout_loss(model, windows: np.ndarray) -> float:
    logits = model.forward(windows[:, :-1])
    return lib.cross_entropy(logits, windows[:, 1:])


def test_loads_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("the network is switched off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    model = lib.load_pretrained("shakespeare")
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert model.config.vocab_size == config["vocab_size"] == model.tokenizer.vocab_size
    assert model.config.n_layer == config["n_layer"]
    assert model.config.n_ctx == config["n_positions"]


def test_training_facts_match_the_weights(model, facts):
    assert model.num_params() == facts["num_params"]
    assert len(facts["vocabulary"]) == facts["vocab_size"] == model.config.vocab_size
    assert (MODEL_DIR / "model.safetensors").stat().st_size <= 15 * 2**20


def test_logits_match_pytorch(model, heldout):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    reference = transformers.GPT2LMHeadModel.from_pretrained(MODEL_DIR).eval()
    ids = model.tokenizer.encode(heldout[:128])
    with torch.no_grad():
        expected = reference(torch.from_numpy(ids)[None]).logits[0].numpy()
    np.testing.assert_allclose(model.forward(ids), expected, rtol=0, atol=1e-4)


def test_heldout_loss_stays_under_the_recorded_bound(model, heldout, facts):
    loss = heldout_loss(model, check_windows(model, heldout, facts))
    assert loss == pytest.approx(facts["heldout_check"]["loss"], abs=1e-3)
    assert loss <= facts["heldout_check"]["bound"]


def add_noise(params: dict) -> dict:
    """Every block's weight matrices plus Gaussian noise as large as their own spread."""
    rng = np.random.default_rng(0)
    noisy = copy.deepcopy(params)
    for layer in noisy["h"]:
        for part in ("attn", "mlp"):
            for linear in layer[part].values():
                w = linear["w"]
                linear["w"] = w + rng.normal(0, w.std(), w.shape).astype(w.dtype)
    return noisy


def swap_first_two_blocks(params: dict) -> dict:
    swapped = copy.copy(params)
    swapped["h"] = [params["h"][1], params["h"][0], *params["h"][2:]]
    return swapped


@pytest.mark.parametrize("damage", [add_noise, swap_first_two_blocks])
def test_damaged_weights_break_the_bound(model, heldout, facts, damage):
    damaged = lib.Model(model.config, damage(model.params), model.tokenizer)
    loss = heldout_loss(damaged, check_windows(model, heldout, facts))
    assert loss > facts["heldout_check"]["bound"]


def test_tokenizer_round_trip_is_exact(model, heldout):
    ids = model.tokenizer.encode(heldout)
    assert len(ids) == len(heldout)
    assert model.tokenizer.decode(ids) == heldout


def test_unknown_character_is_named():
    tokenizer = lib.Tokenizer.from_dir(MODEL_DIR)
    with pytest.raises(ValueError, match="'é'"):
        tokenizer.encode("Romeo, Romeo, wherefore art thou Roméo?")


def test_seeded_generation_is_reproducible(model):
    prompt = model.tokenizer.encode(PROMPT)

    def sample(seed):
        return lib.generate(model, prompt, 200, temperature=0.8, rng=np.random.default_rng(seed))

    first, again, other = sample(0), sample(0), sample(1)
    assert len(first) == len(prompt) + 200
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert model.tokenizer.decode(first).startswith(PROMPT)
