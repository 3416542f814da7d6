"""Naming a mistake nobody listed: structural explanations of a wrong answer.

``grader.compare`` names an exercise's known mistakes first. When none matches, ``explain`` tries,
in this order, explanations that need no list, and returns the first that fits, as one line that
says what to look at without showing an expected value:

1. the shape: axes permuted, a batch axis lost (the first sequence alone is right), an axis of
   size 1 too many, entries too many or too few along one axis;
2. overflow: NaN or inf on large inputs, while the same inputs scaled down come out right;
3. an argument that changes nothing: the output stays the same when it changes, while the
   reference's does not ("your function ignores `eps`"), or the queries of an attention whose
   every output row is a row of the values (a mask that leaves each query one key); a stabiliser
   used otherwise than the reference's: right with ``eps`` at 0 (``variants.zeroed``), wrong here;
4. a batch axis: right on one sequence, wrong on a batch;
5. the precision: right in float64 and not in float32, or the reverse; integers where the
   reference's floats have fractions (floats written into an int array); a floor under the
   reference (a clip, or the log of a probability plus a small eps);
6. where NaN and -inf are: NaN everywhere, NaN exactly where the reference masks, whole rows of
   NaN, large finite numbers or zeros where the reference has -inf, more or fewer entries kept per
   row (at -inf, or at probability 0), as many but not the same ones;
7. an exact relation: close but outside the tolerance, transposed or axes permuted, reversed or
   shifted by one along an axis, a constant factor or offset (a factor that is a count of the
   inputs, or a ratio of two counts one apart, said as a sum divided by the wrong count), the
   reference to a power (an exponent scaled: 2 ** x for e ** x, a loss divided by the wrong
   count), a constant or factor per row, one vector (a bias) or one factor per feature on every
   row, exp, log or softmax of the reference, its running total along an axis (or the reverse),
   the reference plus or minus an input or a station (a residual added twice, a term missing), two
   stations multiplied where the reference adds them, or with a station counted a named number of
   times;
8. what sets the case apart: the kinds of input (``grader.kinds``) it has and every case the
   function gets right lacks ("`stop_token` = 0");
9. where it is wrong: which of the arrays an output stacks (``Exercise.stacked``: q right, k and v
   wrong), only the first or last entry along an axis, everywhere but the first, only the odd or
   even entries, only above, below or on the diagonal; the last axis k copies of one block where
   the reference's k blocks differ (heads averaged, or one head repeated, where they belong side
   by side);
10. what it is not: rows that do not sum to 1 where the reference's are probabilities.

Then, with the reference called on inputs changed here: the steps of an exercise that declares
them (``Exercise.steps``) in another order; a gain or a bias applied to the input where the
reference applies it to the result, or the reverse; the items of a reduction (``Exercise.terms``)
averaged another way (a harmonic mean where a geometric one belongs); a term that grows with an
int argument off by a ratio of two sizes (``d_head`` where ``d_model`` belongs); the output a
station (or an input) times another weight matrix than the reference's; an input scaled by the
square root of a ratio of sizes, fitted (sqrt of the keys' length where sqrt(d_head) belongs);
an output that moves when each row of an input is shifted by a constant, where the reference's
does not (raw logits where log-probabilities belong), and a function right when an input comes
normalised (``variants.normalised``: its log-softmax, its softmax, its mean subtracted), which
leaves that step out. Also from the output alone: weights that are the reference's with a factor
per column, the same in every row (a row's max or sum lined up with the columns, no keepdims);
a softmax taken once too often, the reference normalised again per row (a norm at the end), the
reference times or divided by an input entry by entry (a gate without its value), one number
that is exp or the log of the reference's, and a count whose part that grows with an int
argument is right and whose rest is off by a named factor; an input scaled by a named constant
(ln 2: 2 ** x for e ** x), and by 2 said as counted twice.
For an exercise with steps, a listed mistake that matches the case gives way to the order of
steps the function follows when a variant shows the mistake wrong in another way
(``reordered_instead``; ``variants.raised`` moves a float towards its other end for that): two
orders that agree on every visible case. Last, for an exercise with parts, what
``stations`` finds is the message itself. An argument is said to be ignored only if pushed far
(``variants.pushed``) it still moves nothing; more or fewer entries kept is said to be an
off-by-one only if the other cases the function gets wrong keep more, or fewer, the same way.

1, 6 and 7 compare the output with the reference; 2-5 call the student's function on variants of
the case (``grader.variants``), 8 on the exercise's other cases. For an exercise with parts,
``stations`` finds the first intermediate that differs: a helper of the student's that is wrong
on the reference's inputs, or one that is right but is fed something else by the function that
calls it ("your `mlp` is right, but `block` feeds it resid_mid where it needs ln_2").

The student's side comes through a ``Student``: ``InKernel`` calls the functions (the notebook's
check), ``Returned`` reads what the scorer sent back (the grader; ``grader.followup`` asks for it).

The rules live in one module per family: ``shapes`` (shapes and axes), ``numeric`` (overflow,
precision, NaN and -inf, entries kept), ``inputs`` (an input swapped, ignored, off by one, scaled,
a softmax too early), ``values`` (exact relations with the reference: factors, offsets, powers,
terms), ``order`` (steps in another order, a gain or bias at the other end, a reduction of another
kind), ``cases`` (what the other cases tell), ``parts`` (the first station that differs), on
``core`` (the student's side, comparing) and ``counts`` (sizes and named constants); ``driver``
runs them in order and words the message.
"""

from .core import OWN_ERROR, InKernel, Outcome, Returned, Student, calls, error_type, part_call, watched_call
from .driver import explain, explain_error
from .order import reordered_instead
from .parts import ALL_MATCH, stations

__all__ = [
    "ALL_MATCH",
    "OWN_ERROR",
    "InKernel",
    "Outcome",
    "Returned",
    "Student",
    "calls",
    "error_type",
    "explain",
    "explain_error",
    "part_call",
    "reordered_instead",
    "stations",
    "watched_call",
]
