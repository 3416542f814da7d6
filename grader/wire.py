"""What crosses the scorer's wall: one output of a student's function as a JSON-safe record.

Arrays and numbers are ``{"array": {"dtype", "shape", "b64"}}`` (numeric dtypes only), text is
``{"value": str}``; a list or tuple of numbers travels as the array NumPy makes of it, with
``"returned": "list"`` (or ``"tuple"``) beside it, so that feedback can name what was returned; a
0-d array, which a Python number cannot be told from once it is an array, has ``"0-d array"``.
``encode`` runs inside the sandbox (the scorer's harness loads this module there, as ``wire``),
``decode`` in the grading process, where every record is untrusted input: a malformed one (any
type, any size of number, any nesting) raises ``ValueError`` and nothing else, and counts as no
answer.

NumPy and the standard library only.
"""

import base64
import binascii
import math

import numpy as np

MAX_ELEMENTS = 2**24  # far beyond any answer; a record claiming more is refused unread
MAX_AXES = 64  # NumPy's own limit


def encode(value) -> dict:
    """A JSON-safe record of one output."""
    if isinstance(value, str):
        return {"value": value}
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        return {"error": f"TypeError: returned {kind_of(value, array)}, not an array or number"}
    if array.size > MAX_ELEMENTS:
        return {"error": f"ValueError: returned {array.size} numbers, far more than any answer has"}
    array = np.require(array, requirements="C")  # keeps 0-d shapes (ascontiguousarray makes them 1-d)
    record = {
        "array": {
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "b64": base64.b64encode(array.tobytes()).decode("ascii"),
        }
    }
    if sequence := returned(value):
        record["returned"] = sequence
    return record


def kind_of(value, array: np.ndarray) -> str:
    """What an output that is no array of numbers is: an array's dtype (``"array of complex128"``),
    else its type (``"dict"``, ``"generator"``)."""
    return f"array of {array.dtype}" if isinstance(value, np.ndarray | np.generic) else type(value).__name__


def returned(value) -> str | None:
    """``"list"`` or ``"tuple"`` for an output that is one, where NumPy would read an array;
    ``"0-d array"`` for an array of no axes, where a number was asked for."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return ZERO_D
    return next((kind.__name__ for kind in (list, tuple) if isinstance(value, kind)), None)


ZERO_D = "0-d array"


def returned_in(record) -> str | None:
    """What ``encode`` noted a record's output was (``"list"``, ``"tuple"``), if anything it could note."""
    kind = record.get("returned") if isinstance(record, dict) else None
    return kind if kind in ("list", "tuple", ZERO_D) else None


def decode(record):
    """Inverse of ``encode``; raises ``ValueError`` on anything malformed."""
    if not isinstance(record, dict):
        raise ValueError("a record is a JSON object")
    if isinstance(record.get("value"), str):
        return record["value"]
    spec = record.get("array")
    if not isinstance(spec, dict):
        raise ValueError("record has neither an array nor a value")
    try:
        if not isinstance(spec["dtype"], str) or not isinstance(spec["shape"], list):
            raise TypeError
        dtype = np.dtype(spec["dtype"])
        shape = tuple(spec["shape"])
        data = base64.b64decode(spec["b64"], validate=True)
    except (KeyError, TypeError, binascii.Error) as err:
        raise ValueError(f"malformed array record ({type(err).__name__})") from None
    if dtype.kind not in "biuf" or dtype.hasobject:
        raise ValueError(f"dtype {dtype} is not numeric")
    # Each size is checked before any arithmetic (JSON integers have no bound, NumPy's do), and the
    # number of axes before the product (of a million sizes, it would take the grader hours).
    if (
        len(shape) > MAX_AXES
        or not all(type(n) is int and 0 <= n <= MAX_ELEMENTS for n in shape)
        or math.prod(shape) > MAX_ELEMENTS
    ):
        raise ValueError(f"shape {str(shape)[:80]} is not a shape of an answer")
    return np.frombuffer(data, dtype=dtype).reshape(shape)
