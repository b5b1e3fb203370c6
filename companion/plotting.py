"""Figure defaults for the chapters: one style, and fonts that draw Hangul.

Importing this module is enough: ``import companion.plotting``. The Korean font
comes from the `koreanize-matplotlib` package, not from the system, so figures
look the same on every reader's machine.
"""

from __future__ import annotations

import koreanize_matplotlib  # noqa: F401  (registers the NanumGothic font it bundles)
import matplotlib.pyplot as plt

plt.rcParams.update({
    # DejaVu Sans first: mathtext tick labels (10^-3) need its minus sign, which
    # NanumGothic lacks; Hangul glyphs fall back to NanumGothic.
    "font.family": ["DejaVu Sans", "NanumGothic"],
    "axes.unicode_minus": True,
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 110,
    "savefig.bbox": "tight",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
})
