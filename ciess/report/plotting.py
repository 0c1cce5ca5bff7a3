"""One look for every figure of the suite: theme, one colour per method, the profile banner,
and saving as PNG (``PNG_DPI``, a 256-colour palette) and PDF beside it."""
from __future__ import annotations

from pathlib import Path

from ciess.labels import METHOD_ORDER

# Okabe-Ito colours (safe for the common colour-vision deficiencies), two of Tol's for the -B
# variants; CIESS, the method under study, gets the strongest (vermillion), never a pale one.
PALETTE = {"Full": "#000000", "ES": "#0072B2", "MR": "#E69F00", "MDE": "#009E73",
           "Sides": "#004D40",  # a darker green: the other allocation diagnostic beside MDE
           "PEP": "#56B4E9", "ESAPN": "#CC79A7", "OptEmb": "#B8A400", "ESAPN-B": "#882255",
           "OptEmb-B": "#999933", "CIESS": "#D55E00",
           # the shipped search recipes (docs/ciess.md §18): CIESS's hue family, darker and lighter
           "CIESS (paper)": "#8C7B70",  # the paper's search beside a main recipe: grey-brown
           "CIESS (code)": "#8B2E00", "CIESS (code_noise)": "#F4A582", "CIESS (held)": "#B2182B",
           "CIESS (held_short)": "#D6604D",
           "CIESS (holdout)": "#E7298A", "CIESS (held_holdout)": "#67001F"}


def method_palette() -> dict[str, str]:
    """The same colour for a method in every figure (every label of ``METHOD_ORDER``)."""
    return {m: PALETTE[m] for m in METHOD_ORDER}


def use_theme() -> None:
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def banner(profile: str) -> str:
    """The run's profile as a figure subtitle; quick runs say their numbers mean nothing."""
    if profile == "quick":
        return "profile quick: smoke-level numbers, no scientific meaning"
    return f"profile {profile}"


PNG_DPI = 150  # sharp on screen and in print; the PDF beside it is the vector copy


def save_figure(fig, png: str | Path, profile: str | None = None) -> None:
    """Subtitle with the profile (if given), then PNG (``PNG_DPI``, 256-colour palette) and PDF
    beside it."""
    if profile is not None:
        fig.suptitle(banner(profile), fontsize=9, color="0.3", y=1.0)
    fig.savefig(png, dpi=PNG_DPI, bbox_inches="tight")
    to_palette_png(png)
    fig.savefig(Path(png).with_suffix(".pdf"), bbox_inches="tight")


def to_palette_png(png: str | Path) -> None:
    """Rewrite a PNG with a 256-colour palette (over white, no dithering): a plot's flat colours
    and antialiased edges survive, the file is about a third (the CIESS search figure: 1.34 to
    0.44 MB), which keeps the shipped snapshots small."""
    from PIL import Image

    with Image.open(png) as image:
        rgba = image.convert("RGBA")
    flat = Image.new("RGBA", rgba.size, "white")
    flat.alpha_composite(rgba)
    flat.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                 dither=Image.Dither.NONE).save(png, optimize=True)
