"""One look for every figure of the suite: theme, one colour per method, the profile banner,
and saving as PNG (200 dpi) and PDF beside it."""
from __future__ import annotations

from pathlib import Path

METHOD_ORDER = ["Full", "ES", "MR", "MDE", "PEP", "ESAPN", "ESAPN-B", "OptEmb", "OptEmb-B", "CIESS"]


def method_palette() -> dict[str, tuple]:
    """The same colour for a method in every figure."""
    import seaborn as sns

    return dict(zip(METHOD_ORDER, sns.color_palette("colorblind", len(METHOD_ORDER))))


def use_theme() -> None:
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def banner(profile: str) -> str:
    """The run's profile as a figure subtitle; quick runs say their numbers mean nothing."""
    if profile == "quick":
        return "profile quick: smoke-level numbers, no scientific meaning"
    return f"profile {profile}"


def save_figure(fig, png: str | Path, profile: str | None = None) -> None:
    """Subtitle with the profile, then PNG (200 dpi) and PDF beside it."""
    if profile is not None:
        fig.suptitle(banner(profile), fontsize=9, color="0.3", y=1.0)
    fig.savefig(png, dpi=200, bbox_inches="tight")
    fig.savefig(Path(png).with_suffix(".pdf"), bbox_inches="tight")
