"""What the scorer lends each chapter (``grader.lending``), and the notebook's check that says so.

For every assignment: the generated ``lib`` binds none of the chapter's graded stages and none of
its statements reads one (so nothing that composes them is there either); inside the real scorer
sandbox ``import lib; lib.<graded>`` and ``from lib.<module> import <graded>`` fail; and every lent
function gives the same outputs as the real one. In the notebook, a right function that calls a
``lib`` function the chapter does not lend fails its check, naming the call, and one that sticks to
what is lent passes.
"""

import ast
import functools
import gc
import importlib.util
import math
import operator
import pickle
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from helpers import solution_functions

import lib
from grader import exercises, lending, names, sandbox, scoring
from grader.check import CheckFailed, check

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
ASSIGNMENTS = sorted({exercise_id.partition("/")[0] for exercise_id in exercises.registry()})
G = np.random.default_rng(0)
X = G.normal(size=(2, 3, 5)).astype(np.float32)
Q, K, V = (G.normal(size=(2, 4, 3)) for _ in range(3))
# One call of every function some chapter lends: (name, args, kwargs), and what of the result to compare.
LENT_CALLS = {
    "softmax": [("softmax", (X,), {}), ("softmax", (X.astype(np.float64),), {"axis": 0})],
    "layer_norm": [("layer_norm", (X, np.ones(5, np.float32) * 2, np.arange(5, dtype=np.float32)), {})],
    "causal_mask": [("causal_mask", (3, 5), {}), ("causal_mask", (4,), {})],
    "scaled_dot_product_attention": [("scaled_dot_product_attention", (Q, K, V, lib.causal_mask(4)), {})],
    "Config": [("Config", (), {"vocab_size": 10, "n_ctx": 8, "d_model": 12, "n_layer": 2, "n_head": 3})],
}


def lent_outputs(folder, calls):
    """Run ``calls`` with the generated lib in ``folder``, alone on sys.path with NumPy."""
    script = (
        "import pickle, sys\n"
        f"sys.path[:0] = [{str(scoring._package_paths()[0].parent)!r}, {str(folder.parent)!r}]\n"
        "import lib\n"
        "calls = pickle.load(sys.stdin.buffer)\n"
        "out = [getattr(lib, name)(*args, **kwargs) for name, args, kwargs in calls]\n"
        "out = [o.to_dict() | {'d_head': o.d_head} if hasattr(o, 'to_dict') else o for o in out]\n"
        "sys.stdout.buffer.write(pickle.dumps(out))\n"
    )
    done = subprocess.run(
        [str(sandbox.interpreter("minimal")), "-I", "-S", "-c", script],
        input=pickle.dumps(calls),
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr.decode()
    return pickle.loads(done.stdout)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_scorers_lib_holds_nothing_graded(assignment, tmp_path):
    folder = lending.write(assignment, tmp_path)
    graded = set(lending.graded(assignment))
    assert graded and graded.isdisjoint(lending.lends(assignment))
    assert all(lending.source().home(name) for name in graded | set(lending.lends(assignment)))
    for path in folder.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            source = ast.unparse(node)
            assert not names.bound(source) & graded, (path.name, source[:80])
            assert not names.read(source) & graded, (path.name, source[:80])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_lent_functions_give_libs_outputs(assignment, tmp_path):
    calls = [call for name in lending.lends(assignment) for call in LENT_CALLS[name]]
    ours = lent_outputs(lending.write(assignment, tmp_path), calls)
    for (name, args, kwargs), got in zip(calls, ours, strict=True):
        expected = getattr(lib, name)(*args, **kwargs)
        if isinstance(expected, lib.Config):
            assert got == expected.to_dict() | {"d_head": expected.d_head}
        else:
            np.testing.assert_array_equal(got, expected)
            assert got.dtype == expected.dtype


def test_every_lent_name_has_a_sample_call():
    assert {name for a in ASSIGNMENTS for name in lending.lends(a)} <= set(LENT_CALLS)


def test_a_lending_that_reaches_a_graded_name_is_refused():
    with pytest.raises(ValueError, match="softmax"):
        lending.source().closure(["scaled_dot_product_attention"], graded=["softmax"])
    with pytest.raises(ValueError, match="no 'nothing_like_this'"):
        lending.source().closure(["nothing_like_this"])


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    return scoring.Scorer(tmp_path_factory.mktemp("scorer"), b"s" * 32, scoring.Limits(2**30, 10))


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_graded_stages_are_absent_inside_the_scorer(scorer, assignment):
    graded = lending.graded(assignment)
    cells = [f"import lib\nlib.{name}" for name in graded]  # the public name, or none
    cells += [f"from {lending.source().home(name)} import {name}" for name in graded]
    cells.append("import lib\nprint(lib.__file__)")  # the lent lib itself imports fine
    run = scorer.run([{"index": i, "source": s} for i, s in enumerate(cells)], assignment)
    assert run.done
    assert set(run.failed) == set(range(len(cells) - 1)), run.failed
    for index in range(len(graded)):
        assert run.failed[index].startswith("AttributeError"), run.failed[index]
        assert run.failed[index + len(graded)].startswith(("ModuleNotFoundError", "ImportError")), run.failed


def test_a_process_never_holds_a_lib_that_reaches_what_its_notebook_grades():
    """Along each of ``lending.chains`` (the notebooks one scorer process takes in turn, each
    lent lib added to the ones before), no definition lent so far is one the notebook at hand
    grades. The course's graded chapters make two chains: chapter 3 grades the softmax that
    chapter 2 lends, and chapter 2 the layer_norm that chapter 3 lends."""
    chains = lending.chains(ASSIGNMENTS)
    assert sorted(a for chain in chains for a in chain) == ASSIGNMENTS
    for chain in chains:
        held: set[str] = set()
        for assignment in chain:
            held |= {name for _, name in lending.lent_definitions(assignment)}
            assert not held & set(lending.graded(assignment)), (chain, assignment)
    assert len(chains) == 2, chains


# ---- the notebook's check: a call into lib the scorer will not lend fails it -------------------


def layout(config):
    return lib.checkpoint.checkpoint_layout(config)


def masked_scores_with(mask):
    def masked_scores(q, k):
        scores = q @ k.swapaxes(-1, -2) / q.dtype.type(math.sqrt(q.shape[-1]))
        return np.where(mask(q.shape[-2], k.shape[-2]), scores, q.dtype.type(-np.inf))

    return masked_scores


def test_an_unlent_call_fails_the_check_naming_it():
    with pytest.raises(CheckFailed) as failed:
        check("02-transformer-block/masked_scores", masked_scores_with(lib.causal_mask))
    message = str(failed.value)
    assert "lib.causal_mask" in message and "does not lend" in message and "\n" not in message


def test_the_same_function_written_with_numpy_passes(capsys):
    check("02-transformer-block/masked_scores", masked_scores_with(lambda T, S: np.tri(T, S, dtype=bool)))
    assert "✔" in capsys.readouterr().out


def test_a_wrong_answer_is_diagnosed_before_the_lending():
    def no_scale(q, k):
        return np.where(lib.causal_mask(q.shape[-2]), q @ k.swapaxes(-1, -2), q.dtype.type(-np.inf))

    with pytest.raises(CheckFailed, match="not scaled"):
        check("02-transformer-block/masked_scores", no_scale)


def test_lent_functions_pass_the_check(capsys):
    """Chapter 3's lm_head uses the lent layer_norm, chapter 4's cached attention the lent
    attention, chapter 6's counts read the lent Config (a property included)."""
    ch03 = solution_functions(
        SOLUTIONS / "03-lm-head" / "lm_head.py", {"np": np, "layer_norm": lib.layer_norm}
    )
    check("03-lm-head/lm_head", ch03["lm_head"])
    lent = ("softmax", "causal_mask", "scaled_dot_product_attention")
    ch04 = solution_functions(
        SOLUTIONS / "04-sampling" / "sampling.py", {"np": np} | {n: getattr(lib, n) for n in lent}
    )
    check("04-sampling/attend_with_cache", ch04["attend_with_cache"])
    check("04-sampling/filtered_probs", ch04["filtered_probs"])

    def kv_cache_bytes(config, T, dtype):
        return 2 * config.n_layer * config.n_kv_head * config.d_head * T * np.dtype(dtype).itemsize

    check("06-cost/kv_cache_bytes", kv_cache_bytes)
    assert capsys.readouterr().out.count("✔") == 4


@pytest.mark.parametrize(
    ("exercise_id", "fn", "named"),
    [
        (
            "04-sampling/filtered_probs",
            lambda logits, **settings: lib.filtered_probs(logits, **settings),
            "lib.filtered_probs",
        ),
        (
            "06-cost/count_params",
            lambda config: sum(math.prod(s) for s, _, _ in layout(config).values()),
            "lib.checkpoint.checkpoint_layout",
        ),
        ("01-embeddings/embed", lambda ids, wte, wpe: lib.embed(ids, wte, wpe), "lib.embed"),
    ],
)
def test_unlent_calls_are_named_in_every_chapter(exercise_id, fn, named):
    with pytest.raises(CheckFailed) as failed:
        check(exercise_id, fn)
    assert named in str(failed.value)


def test_a_package_the_scorer_does_not_have_fails_the_check_naming_it():
    """The kernel has the course's whole environment, the scorer NumPy and the standard library
    only: a function right with tqdm (Python) or torch (C) would score 0 when graded."""
    import torch
    from tqdm import tqdm

    def embed_tqdm(ids, wte, wpe):
        return wte[ids] + wpe[list(tqdm(range(ids.shape[-1]), disable=True))]

    def embed_torch(ids, wte, wpe):
        return (torch.from_numpy(wte)[torch.from_numpy(ids)] + torch.from_numpy(wpe)[: ids.shape[-1]]).numpy()

    for fn, package in ((embed_tqdm, "tqdm"), (embed_torch, "torch")):
        with pytest.raises(CheckFailed) as failed:
            check("01-embeddings/embed", fn)
        assert f"uses {package}, which is not installed where it is graded" in str(failed.value), package


def test_the_standard_library_and_numpy_pass_the_check(capsys):
    def embed(ids, wte, wpe):
        positions = functools.reduce(lambda acc, t: [*acc, t], range(ids.shape[-1]), [])
        return operator.add(wte[ids], wpe[positions])

    check("01-embeddings/embed", embed)
    assert "✔" in capsys.readouterr().out


def test_the_watch_is_removed_after_the_check():
    before = sys.getprofile()
    check("02-transformer-block/masked_scores", masked_scores_with(lambda T, S: np.tri(T, S, dtype=bool)))
    assert sys.getprofile() is before


def test_what_the_garbage_collector_runs_meanwhile_is_not_the_students(tmp_path, capsys):
    """A package loaded in the kernel (hypothesis under pytest) may hear every collection through
    ``gc.callbacks`` or own an object whose finalizer a collection runs: a collection that starts
    while the student's function runs calls that code from the student's frame, and must not be
    read as the student's use of the package."""
    file = tmp_path / "site-packages" / "watcher" / "__init__.py"
    file.parent.mkdir(parents=True)
    file.write_text(
        "heard = []\n"
        "def on_gc(phase, info):\n    heard.append(phase)\n"
        "class Cycle:\n    def __init__(self):\n        self.me = self\n"
        "    def __del__(self):\n        heard.append('finalized')\n"
    )
    spec = importlib.util.spec_from_file_location("watcher", file)
    watcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(watcher)
    assert lending._package(watcher.on_gc.__code__.co_filename) == "watcher"

    def embed(ids, wte, wpe):
        gc.collect()
        return wte[ids] + wpe[: ids.shape[-1]]

    gc.callbacks.append(watcher.on_gc)
    try:
        watcher.Cycle()  # garbage now, freed by the collection the student's function starts
        check("01-embeddings/embed", embed)
    finally:
        gc.callbacks.remove(watcher.on_gc)
    assert {"start", "stop", "finalized"} <= set(watcher.heard)
    assert "✔" in capsys.readouterr().out
    assert sys.getprofile() is None and watcher.on_gc not in gc.callbacks


def test_what_the_kernel_runs_for_print_and_warnings_is_not_the_students(tmp_path):
    """In a real kernel, ``print`` reaches IPython's tee of the output stream, and a warning (NumPy's
    overflow in ``exp``, the student's own ``warnings.warn``) reaches ``warnings`` and the kernel's
    stream: the environment's code, which the scorer has its own of, so each passes the check. A
    function that imports IPython itself still fails it: the scorer cannot import that."""
    from nbclient import NotebookClient

    body = "    return wte[ids] + wpe[: ids.shape[-1]]\n"
    functions = {
        "printed": 'print("debugging")\n',
        "overflowed": "np.exp(np.float32(100))\n",
        "warned": 'warnings.warn("careful")\n',
        "logged": 'logging.warning("careful")\n',
        "displayed": "display(ids)\n",
    }
    cells = ["import logging, warnings\nimport numpy as np\nfrom grader.check import check"]
    cells += [f"def {name}(ids, wte, wpe):\n    {line}{body}" for name, line in functions.items()]
    cells += [
        "from IPython.display import display as show\ndef shown(ids, wte, wpe):\n    show(ids)\n" + body
    ]
    cells += [f'check("01-embeddings/embed", {name})' for name in (*functions, "shown")]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute(cwd=str(tmp_path))
    checks = nb.cells[-len(functions) - 1 :]
    outputs = [" ".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs) for cell in checks]
    for name, shown in zip(functions, outputs[:-1], strict=True):
        assert "✔ embed matches" in shown and "not installed" not in shown, (name, shown)
    assert "uses IPython, which is not installed where it is graded" in outputs[-1]
