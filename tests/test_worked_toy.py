"""Chapter 5 (the worked toy), what is particular to it: the toy model, and `toy_forward` naming the
first wrong station.

The toy model loads in lib and in transformers with the same logits and predicts what the chapter
says; a bug in one of the helpers that `toy_forward` uses is reported at that helper's station.
What every exercise guarantees (the reference passes, each known mistake is named, hard-coded
answers fail the hidden cases, stubs, float32 and float64 cases, concept checks) is in
test_exercises.py.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import lib
from grader.check import CheckFailed, check
from grader.exercises import ch05

ASSIGNMENT = ch05.ASSIGNMENT
TOY_DIR = Path(lib.__file__).parent / "models" / "toy"


def exercise_id(exercise):
    return f"{ASSIGNMENT}/{exercise.name}"


# ---- the toy model -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy():
    return lib.load_pretrained("toy")


def test_toy_config(toy):
    c = toy.config
    assert (c.vocab_size, c.n_ctx, c.d_model, c.n_layer, c.n_head, c.d_ff) == (3, 4, 4, 1, 2, 16)
    assert c.tie_embeddings and c.gelu == "tanh" and c.norm_eps == 1e-5 and c.positions == "learned"
    assert toy.num_params() == 280


def test_toy_weights_are_short_decimals(toy):
    for leaf in ch05.lib.model.leaves(toy.params):
        assert np.all(np.abs(leaf) <= 1.0)
        assert np.allclose(leaf * 10, np.round(leaf * 10), atol=1e-5), "one decimal place"


def test_toy_tokenizer(toy):
    tok = toy.tokenizer
    assert tok.vocab == {"AI": 0, "rocks": 1, "<eos>": 2}
    assert tok.encode("AI rocks").tolist() == [0, 1]
    assert tok.encode("AI rocks <eos>").tolist() == [0, 1, 2]
    assert tok.decode(np.array([0, 1, 2])) == "AI rocks <eos>"
    with pytest.raises(ValueError):
        tok.encode("AI rules")


def test_toy_predictions(toy):
    logits, trace = toy.forward(np.array([0, 1]), trace=True)
    probs = lib.softmax(logits)
    assert probs.argmax(-1).tolist() == [1, 2]  # rocks after AI, <eos> after AI rocks
    attn = trace["h.0.attn.probs"][:, 1]  # query 1 ("rocks") over keys 0, 1, per head
    assert np.all(np.abs(attn - 0.5) > 0.2), "attention should be far from uniform"
    assert attn[0].argmax() != attn[1].argmax(), "the two heads look at different tokens"


def test_toy_matches_transformers(toy):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf = transformers.GPT2LMHeadModel.from_pretrained(TOY_DIR).eval()
    for ids in ([0, 1], [1, 0], [0, 0, 1], [0, 1, 2, 0], [2]):
        with torch.inference_mode():
            expected = hf(torch.tensor([ids])).logits[0].numpy()
        np.testing.assert_allclose(toy.forward(np.array(ids)), expected, atol=1e-6, rtol=0)


def test_toy_config_json():
    config = json.loads((TOY_DIR / "config.json").read_text())
    assert config["eos_token_id"] == 2 and config["vocab_size"] == 3


def test_variant_forward_is_lib_when_nothing_changes(toy):
    for ids in ([0, 1], [0, 1, 2, 0]):
        ids = np.array(ids)
        np.testing.assert_allclose(ch05.variant_forward(ids, toy.params), toy.forward(ids), atol=1e-6)


# ---- toy_forward names the first bad station ---------------------------------------------------


def _reference_helpers():
    def embed(ids, wte, wpe):
        return lib.embed(ids, wte, wpe)

    return {
        "toy_embed": embed,
        "toy_layer_norm": lambda x, g, b, eps: lib.layer_norm(x, g, b, eps),
        "toy_qkv": ch05._qkv_ref,
        "toy_attention_probs": ch05._probs_ref,
        "toy_attention_output": ch05._attn_out_ref,
        "toy_mlp": ch05._mlp_ref,
    }


def test_forward_names_the_first_bad_station():
    """A bug in one helper, used by toy_forward, is reported at that helper's station."""
    helpers = _reference_helpers()

    def bad_probs(q, k):  # no causal mask
        return lib.softmax(q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1]), axis=-1)

    helpers["toy_attention_probs"] = bad_probs

    def forward(ids, params):
        x = helpers["toy_embed"](ids, params["wte"], params["wpe"])
        layer = params["h"][0]
        h = lib.layer_norm(x, layer["ln_1"]["g"], layer["ln_1"]["b"])
        q, k, v = ch05._qkv_ref(h, layer["attn"]["c_attn"]["w"], layer["attn"]["c_attn"]["b"], 2)
        p = bad_probs(q, k) * 1.01  # not exactly a known mistake
        x = x + ch05._attn_out_ref(p, v, layer["attn"]["c_proj"]["w"], layer["attn"]["c_proj"]["b"])
        h = lib.layer_norm(x, layer["ln_2"]["g"], layer["ln_2"]["b"])
        x = x + lib.mlp(h, layer["mlp"])
        x = lib.layer_norm(x, params["ln_f"]["g"], params["ln_f"]["b"])
        return x @ params["wte"].T

    with pytest.raises(CheckFailed) as caught:
        check(exercise_id(ch05.TOY_FORWARD), forward, **helpers)
    assert "h.0.attn.probs" in str(caught.value) and "toy_attention_probs" in str(caught.value)
