"""Figure defaults for the chapters: one style, and a font that draws Hangul.

Importing this module is enough: ``import companion.plotting``. The Korean font
comes from the `koreanize-matplotlib` package, not from the system, so figures
look the same on every reader's machine.
"""

from __future__ import annotations

import koreanize_matplotlib  # noqa: F401  (registers NanumGothic and selects it)
import matplotlib.pyplot as plt

plt.rcParams.update({
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.unicode_minus": False,  # the Hangul font has no U+2212 minus sign
})
