"""PNG charts of a report (matplotlib, no display needed). Each function
returns the figure it saved, so tests can read what was drawn."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are made by services and CI, never on a screen
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from custody.service.reporting.figures import FORMS, OUTCOMES, Figures  # noqa: E402

LIMIT_COLOR = "#d62728"
BAR_COLOR = "#1f77b4"
DPI = 80


def hold_unit(limit_hours: float) -> tuple[str, float]:
    """Hours for a real policy; minutes when a compressed (demo, soak) limit is under two hours."""
    return ("minutes", 60.0) if limit_hours < 2 else ("hours", 1.0)


def _save(fig: Figure, path: Path) -> Figure:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": "custody report"})
    plt.close(fig)
    return fig


def _bars(path: Path, title: str, labels: list[str], values: list[int], xlabel: str) -> Figure:
    fig, ax = plt.subplots(figsize=(8, 0.5 * max(len(labels), 3) + 1.2))
    positions = range(len(labels))
    ax.barh(list(positions), values, color=BAR_COLOR)
    ax.set_yticks(list(positions), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    for y, v in zip(positions, values):
        ax.annotate(str(v), (v, y), xytext=(3, 0), textcoords="offset points", va="center")
    ax.set_xlim(0, max(values + [1]) * 1.15)
    return _save(fig, path)


def detainers_by_form(figures: Figures, path: Path) -> Figure:
    return _bars(path, f"Detainers received, {figures.period.label}", [label for _, label in FORMS],
                 [figures.detainers_by_form[key] for key, _ in FORMS], "detainers")


def outcomes(figures: Figures, path: Path) -> Figure:
    return _bars(path, f"Cases by outcome, {figures.period.label}", [label for _, label in OUTCOMES],
                 [figures.outcomes[key] for key, _ in OUTCOMES], "cases")


def hours_held(figures: Figures, path: Path) -> Figure:
    """The histogram a board member reads first: every hold against the legal limit."""
    unit, scale = hold_unit(figures.hold_limit_hours)
    limit = figures.hold_limit_hours * scale
    values = [h * scale for _, h in figures.hours_held]
    fig, ax = plt.subplots(figsize=(8, 4))
    top = max(values + [limit]) * 1.08
    bins = [top * i / 24 for i in range(25)]
    ax.hist(values, bins=bins, color=BAR_COLOR, edgecolor="white")
    ax.axvline(limit, color=LIMIT_COLOR, linestyle="--", linewidth=2, label=f"legal limit {limit:g} {unit}")
    ax.set_xlim(0, top)
    ax.set_xlabel(f"{unit} held after T0 (the moment the person would otherwise have been released)")
    ax.set_ylabel("holds")
    ax.set_title(f"Time held on the detainer, {figures.period.label} ({len(values)} holds)")
    ax.legend(loc="upper left")
    return _save(fig, path)


def pickup_delay(figures: Figures, path: Path) -> Figure:
    unit, scale = hold_unit(figures.hold_limit_hours)
    limit = figures.hold_limit_hours * scale
    values = [h * scale for _, h in figures.pickup_delay_hours]
    fig, ax = plt.subplots(figsize=(8, 4))
    top = max(values + [limit]) * 1.08
    ax.hist(values, bins=[top * i / 24 for i in range(25)], color=BAR_COLOR, edgecolor="white")
    ax.axvline(limit, color=LIMIT_COLOR, linestyle="--", linewidth=2, label=f"legal limit {limit:g} {unit}")
    ax.set_xlim(0, top)
    ax.set_xlabel(f"{unit} from warrant service to ICE taking custody")
    ax.set_ylabel("pickups")
    ax.set_title(f"ICE pickup delay after the hold started, {figures.period.label} ({len(values)} pickups)")
    ax.legend(loc="upper right")
    return _save(fig, path)


def services_per_officer(figures: Figures, path: Path) -> Figure:
    badges = list(figures.services_per_officer) or ["(none)"]
    counts = [figures.services_per_officer.get(b, 0) for b in badges]
    return _bars(path, f"Warrant services per officer (badge), {figures.period.label}", badges, counts, "services")


CHARTS = {
    "detainers-by-form.png": detainers_by_form,
    "outcomes.png": outcomes,
    "hours-held.png": hours_held,
    "pickup-delay.png": pickup_delay,
    "services-per-officer.png": services_per_officer,
}


def draw_all(figures: Figures, folder: Path) -> list[Path]:
    """Every chart of the report as a PNG in `folder` (the report's ChartDrawer)."""
    drawn = []
    for name, draw in CHARTS.items():
        draw(figures, folder / name)
        drawn.append(folder / name)
    return drawn
