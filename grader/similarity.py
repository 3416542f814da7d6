"""How alike two pieces of Python code are, whatever their names: token k-gram fingerprints.

Code is first put in a canonical form (``grader.canonical``: the mechanical rewrites a copier
makes to hide a copy are undone), then read with Python's own ``tokenize`` and normalised so
that renaming changes nothing: every name a programmer chooses (variables, parameters,
functions) becomes ``N`` and every number ``0``; a string is its words, without the names an
f-string puts in them (a message's words are its writer's own: lib's in a copy, the student's in
honest code); keywords, operators, builtins and attribute names (``.shape``, ``np.einsum``: what a
copier cannot rename without changing the program) stay, and so does the layout (newlines and
indentation). The fingerprint of a piece of code is the set of hashes of
its runs of ``K`` consecutive tokens, minus those of some boilerplate (the released stub, the
course's own solution, the honest alternatives of ``grader.alternatives``: what honest students
write too).

Two measures use it, both on fingerprints from which the boilerplate is gone:

- ``containment(lib, student)``: the share of ``lib``'s fingerprint found in the student's code
  (``evidence``: its k-grams in both canonical forms).
  A renamed copy of ``lib``'s implementation contains all of it; an honest solution contains what
  any solution shares with ``lib``, which the boilerplate (the course's solution) removes.
- ``jaccard(a, b)``: two students' code, for the pairs of the report.

Short code looks alike whoever wrote it: ``containment`` needs ``MIN_KGRAMS`` hashes of ``lib``'s
own (30: fewer are what any composition of the parts holds, such as an MLP of two ``linear``
calls with ``.get("b")``, which made an honest one "100% of lib", red team, sixth round), and a pair needs ``MIN_SHARED`` hashes in common that few students of the class have (at most
``COMMON`` of them, or a tenth: a construction half the class writes is not a sign of copying). A library (``copydetect``, MOSS's winnowing on whole files,
with all names one letter and numbers kept) was considered; the pieces compared here are single
functions of a few dozen tokens, where keeping every k-gram costs nothing and attribute names
carry most of the meaning.
"""

import ast
import builtins
import hashlib
import io
import keyword
import re
import tokenize

from . import canonical

K = 5
MIN_KGRAMS = 30
MIN_SHARED = 15
COMMON = 2
NEAR = 0.8  # a share of a fingerprint above which code is near-identical
SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
KEPT_NAMES = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))


def tokens(source: str, keep: bool = False) -> list[str]:
    """The normalised tokens of ``source`` (up to where it stops being valid Python), in the
    canonical form (``keep``: the one that leaves out no code that can run)."""
    found: list[str] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(canonical.canonical(source, keep)).readline):
            if token.type in SKIPPED:
                continue
            found.append(_normalised(token, found[-1] if found else ""))
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def _normalised(token: tokenize.TokenInfo, previous: str) -> str:
    if token.type == tokenize.NAME:
        return token.string if token.string in KEPT_NAMES or previous == "." else "N"
    if token.type == tokenize.NUMBER:
        return "0"
    if token.type == tokenize.STRING:  # a message's words are its writer's own; its names are not
        prefix = token.string[: len(token.string) - len(token.string.lstrip("rRbBuUfF"))]
        text = token.string[len(prefix) :].strip("'\"")
        return re.sub(r"\{[^{}]*\}", "{}", text) if "f" in prefix.lower() else text
    if token.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
        return tokenize.tok_name[token.type]
    return token.string


def bodies(source: str, wrappers: dict | None = None, keep: bool = False) -> str:
    """The bodies of the functions defined at the top level of ``source``, without their
    signatures and docstrings (which a copier keeps from the stub), one after another, in the
    canonical form (``keep``: the one that leaves out no code that can run); calls of the
    wrappers among them, or of ``wrappers`` (a notebook's), replaced by what they return
    (``canonical.inline_wrappers``). Code the canonical form nests too deeply to write out (a
    chain of thousands of temporaries, each read once) is compared as written."""
    for normalise in (True, False):
        try:
            tree = ast.parse(source)
            if normalise:
                tree = canonical.normalized(canonical.inline_wrappers(tree, wrappers, keep), keep)
            found = []
            for node in tree.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                    if body:
                        found.append("\n".join(ast.unparse(statement) for statement in body))
            return "\n".join(found)
        except (RecursionError, MemoryError):
            continue
        except (SyntaxError, ValueError):
            return ""
    return ""


def fingerprint(source: str, boilerplate: tuple[str, ...] = ()) -> set[int]:
    """The hashes of ``source``'s token k-grams that no piece of ``boilerplate`` has."""
    common = set().union(*(_kgrams(tokens(text)) for text in boilerplate))
    return _kgrams(tokens(source)) - common


def evidence(source: str, wrappers: dict | None = None, first: str | None = None) -> set[int]:
    """What a student's ``source`` holds that lib's code may be found in: the k-grams of its
    functions' bodies in both canonical forms, the one that undoes a copier's rewrites (``first``,
    if the caller has them already: ``bodies(source, wrappers)``) and the one that leaves out no
    code that can run. A rule that leaves code out is one a copier can put lib's code behind (red
    team, eighth round: a ``try``'s handler, a ``with``'s context, an input check's test, a store
    read through ``locals()``); a copy must then escape both forms."""
    first = bodies(source, wrappers) if first is None else first
    return _kgrams(tokens(first)) | _kgrams(tokens(bodies(source, wrappers, keep=True), keep=True))


def _kgrams(sequence: list[str]) -> set[int]:
    return {
        int.from_bytes(hashlib.blake2b("\0".join(sequence[i : i + K]).encode(), digest_size=8).digest())
        for i in range(len(sequence) - K + 1)
    }


def containment(part: set[int], whole: set[int]) -> float | None:
    """The share of ``part`` found in ``whole``; ``None`` when ``part`` is too short to tell."""
    if len(part) < MIN_KGRAMS:
        return None
    return len(part & whole) / len(part)


def pairs(fingerprints: dict[str, set[int]]) -> list[tuple[str, str, float]]:
    """(a, b, similarity) for every two owners whose fingerprints are near-identical: Jaccard of
    their uncommon hashes at least ``NEAR``, with at least ``MIN_SHARED`` of them shared."""
    owners: dict[int, list[str]] = {}
    for owner, hashes in sorted(fingerprints.items()):
        for value in hashes:
            owners.setdefault(value, []).append(owner)
    rare = {value for value, who in owners.items() if len(who) <= max(COMMON, len(fingerprints) // 10)}
    shared: dict[tuple[str, str], int] = {}
    for value in rare:
        who = owners[value]
        for i, a in enumerate(who):
            for b in who[i + 1 :]:
                shared[(a, b)] = shared.get((a, b), 0) + 1
    found = []
    for (a, b), count in sorted(shared.items()):
        union = len((fingerprints[a] | fingerprints[b]) & rare)
        if count >= MIN_SHARED and count / union >= NEAR:
            found.append((a, b, count / union))
    return found
