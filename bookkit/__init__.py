"""What the chapters' pages use besides ``lib``: figures that read well on a phone, figures with
controls that work without a kernel, and the name of the machine a timing was measured on.

``lib`` is the model; ``grader`` checks and grades the exercises; ``bookkit`` is presentation only,
and nothing in it computes a number the course teaches.
"""

from . import host, style
from .diagram import Step, flow
from .explorer import EDITION, Bars, Explorer, Heatmap, Html, Select, Slider, State, Text, explore

__all__ = [
    "EDITION",
    "Bars",
    "Explorer",
    "Heatmap",
    "Html",
    "Select",
    "Slider",
    "State",
    "Step",
    "Text",
    "explore",
    "flow",
    "host",
    "style",
]
