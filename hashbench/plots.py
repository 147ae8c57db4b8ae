"""Drawing the figures (their data comes from :mod:`hashbench.figures` and stored result
rows, never from retraining): precision-recall curves (supplementary Figures 2, 3, 5, 6a),
precision within Hamming radius 2 against code length (6b), histograms of network outputs
(1), loss curves (4) and retrieval grids (7-18).

Each figure is written as PNG and PDF, atomically, and the plot functions return the
:class:`matplotlib.figure.Figure` they drew (its axes hold the plotted data). They draw on a
``Figure`` of their own, never through pyplot, so importing or using this module leaves the
caller's matplotlib backend and pyplot's figures alone. Plots are saved at exactly their
figure size (150 dpi, no tight bounding box), so their pixel size is known; retrieval grids
are composed pixel by pixel (:class:`GridLayout`), so the red frames of true matches land on
known pixels.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .io import atomic_write

DPI = 150
FORMATS = ("png", "pdf")


def label(row) -> str:
    """The legend text of a result row: the method's declared ``label`` (its name when it
    is not registered), and its features unless it takes images."""
    from .hashers.base import method_label

    name = method_label(row["method"])
    return name if row["features"] == "images" else f"{name} ({row['features']})"


def files(stem) -> list[Path]:
    """The files a figure named ``stem`` is written to: ``stem``.png and ``stem``.pdf."""
    return [Path(f"{stem}.{ext}") for ext in FORMATS]


def save(fig: Figure, stem) -> list[Path]:
    """Write ``fig`` to :func:`files` (``stem``) atomically; return their paths."""
    paths = files(stem)
    for path in paths:
        with atomic_write(path) as f:
            fig.savefig(f, format=path.suffix[1:], dpi=DPI)
    return paths


def pr_curves(ax, rows, title: str, names=None) -> None:
    """Precision at recall levels 0:0.05:1 over the Hamming ranking, one line per row,
    named by ``names`` (default: :func:`label`)."""
    names = list(rows.apply(label, axis=1)) if names is None else list(names)
    for name, (_, row) in zip(names, rows.iterrows(), strict=True):
        levels = json.loads(row["curves"])["pr_recall_levels"]
        ax.plot([p["recall"] for p in levels], [p["precision"] for p in levels], marker=".", label=name)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def precision_vs_bits(ax, rows, title: str) -> None:
    """Mean precision within Hamming radius 2 against code length, one line per method."""
    for name, group in rows.groupby(rows.apply(label, axis=1), sort=False):
        group = group.groupby("bits")["precision_r2"].mean()
        ax.plot(group.index, group.values, marker="o", label=name)
    ax.set(xlabel="code length (bits)", ylabel="precision within Hamming radius 2", ylim=(0, 1), title=title)
    ax.set_xticks(sorted(rows["bits"].unique()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def figure6(rows, stem, pr_bits: int = 48) -> Figure:
    """Figure 6 for every protocol in ``rows``: (a) PR curves at ``pr_bits``, (b) precision
    within radius 2 against code length. One row of panels per protocol."""
    protocols = list(dict.fromkeys(rows["protocol"]))
    fig = Figure(figsize=(11, 4.5 * len(protocols)))
    axes = fig.subplots(len(protocols), 2, squeeze=False)
    for (ax_pr, ax_bits), protocol in zip(axes, protocols, strict=True):
        part = rows[rows["protocol"] == protocol]
        dataset = part["dataset"].iloc[0]
        pr_curves(ax_pr, part[part["bits"] == pr_bits], f"(a) {dataset}, {protocol}: PR, {pr_bits} bits")
        precision_vs_bits(ax_bits, part, f"(b) {dataset}, {protocol}: precision within radius 2")
    fig.tight_layout()
    save(fig, stem)
    return fig


def leaderboard_figure(rows):
    """The leaderboard's figure (a ``matplotlib.figure.Figure``; :func:`save` writes it): a
    row of three panels per protocol, (a) mAP and (b) precision within Hamming radius 2
    against code length, (c) mAP against training time (log scale; points without a
    measured time are left out). One line per method and features, at the mean over seeds;
    where a method has several seeds at a length (end-to-end methods at 12 bits) a vertical
    bar spans their lowest to highest value (``ax.collections``), so ``ax.lines[i]`` is
    line i of the legend's order (:func:`hashbench.figures.leaderboard_summary`'s).

    Twenty-odd lines outrun any colour cycle, so a line's colour says its loss (a loss's
    head and its end-to-end training share one; :func:`_loss_of`) and its marker and dash
    say its features (:data:`FEATURE_STYLES`); one legend, outside the panels, hides no
    point."""
    from .figures import family, leaderboard_summary
    from .hashers.base import method_label
    from .nets.losses import LOSSES

    summary = leaderboard_summary(rows)
    protocols = list(dict.fromkeys(summary["protocol"])) or [""]
    losses = list(dict.fromkeys(_loss_of(m) for m in summary["method"]))
    losses.sort(key=lambda name: (name not in LOSSES, family(name) != "sanity"))  # the losses first
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(losses)}
    fig = Figure(figsize=(18, 4.8 * len(protocols)), layout="constrained")
    axes = fig.subplots(len(protocols), 3, squeeze=False)
    for (ax_map, ax_r2, ax_time), protocol in zip(axes, protocols, strict=True):
        part = summary[summary["protocol"] == protocol]
        for (method, features), line in part.groupby(["method", "features"], sort=False):
            name = method_label(method) if features == "images" else f"{method_label(method)} ({features})"
            marker, dash = FEATURE_STYLES.get(features, FEATURE_STYLES[None])
            style = {"marker": marker, "linestyle": dash, "color": colours[_loss_of(method)], "label": name,
                     "markersize": 5}
            for ax, metric in ((ax_map, "map"), (ax_r2, "precision_r2")):
                drawn = ax.plot(line["bits"], line[metric], **style)[0]
                spread = line[line["n_seeds"] > 1]
                if len(spread):
                    ax.vlines(spread["bits"], spread[f"{metric}_min"], spread[f"{metric}_max"],
                              color=drawn.get_color())
            timed = line[line["train_s"].notna()]
            ax_time.plot(timed["train_s"], timed["map"], **style)
        for ax, ylabel, title in ((ax_map, "mAP", "(a) mAP"), (ax_r2, "precision within Hamming radius 2",
                                                               "(b) precision within radius 2")):
            ax.set(xlabel="code length (bits)", ylabel=ylabel, ylim=(0, 1), title=f"{title}, {protocol}")
            ax.set_xticks(sorted(part["bits"].unique()))
            ax.grid(alpha=0.3)
        ax_time.set(xlabel="training time (s)", ylabel="mAP", ylim=(0, 1),
                    title=f"(c) mAP against training time, {protocol}")
        if part["train_s"].notna().any():
            ax_time.set_xscale("log")
        ax_time.grid(alpha=0.3)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    return fig


# a line's features as (marker, dash): end to end solid, heads and shallow methods by the
# features they read; None for any other
FEATURE_STYLES = {"images": ("o", "-"), "cnn-cls": ("s", "--"), "gist": ("^", ":"),
                  "cnn-cls-logits": ("D", "-."), None: ("x", "-.")}
# tab10, then ten named colours far from it and from each other
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
           "tab:gray", "tab:olive", "tab:cyan", "black", "gold", "lime", "navy", "magenta", "teal",
           "salmon", "darkkhaki", "deepskyblue", "indigo")


def _loss_of(method: str) -> str:
    """The loss a method trains with (its declared ``loss``: a head and its end-to-end
    method share it), else the method's own name."""
    from .hashers import HASHERS

    return getattr(HASHERS.get(method), "loss", "") or method


def pr_figure(panels, stem, width: float = 5.0, suptitle: str | None = None) -> Figure:
    """Supplementary Figures 2, 3 and 5: a grid of PR panels; ``panels`` is a list of figure
    rows, each a list of (title, result rows, line names)."""
    n_cols = max(len(r) for r in panels)
    fig = Figure(figsize=(width * n_cols, 0.9 * width * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), n_cols, squeeze=False)
    if suptitle:
        fig.suptitle(suptitle)
    for ax_row, row in zip(axes, panels, strict=True):
        for ax, (title, rows, names) in zip(ax_row, row, strict=False):  # a row may fill fewer axes
            pr_curves(ax, rows, title, names)
        for ax in ax_row[len(row):]:
            ax.set_visible(False)
    save(fig, stem)
    return fig


def output_histograms(panels, stem, bins: int = 60) -> Figure:
    """Supplementary Figure 1: one histogram per model of all its outputs on the query
    images. ``panels`` is a list of figure rows (one per family of models), each a list of
    (title, outputs, threshold); the panels of a row share their bins and x axis, and every
    panel's y axis is the fraction of outputs per bin, shared by all. A dashed line marks the
    threshold that makes a bit."""
    n_cols = max(len(r) for r in panels)
    fig = Figure(figsize=(3.2 * n_cols, 2.8 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), n_cols, sharey=True, squeeze=False)
    for ax_row, row in zip(axes, panels, strict=True):
        lo = min(float(np.min(v)) for _, v, _ in row)
        hi = max(float(np.max(v)) for _, v, _ in row)
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        for ax, (title, values, threshold) in zip(ax_row, row, strict=False):  # a row may fill fewer axes
            v = np.ravel(values)
            ax.hist(v, bins=edges, weights=np.full(v.size, 1 / v.size), color="tab:blue")
            ax.axvline(threshold, color="k", ls="--", lw=0.8)
            ax.set(title=title, xlim=(edges[0], edges[-1]), xlabel="output")
            ax.grid(alpha=0.3)
        ax_row[0].set_ylabel("fraction of outputs")
        for ax in ax_row[len(row):]:
            ax.set_visible(False)
    save(fig, stem)
    return fig


def loss_curves(panels, stem) -> Figure:
    """Supplementary Figure 4: training loss of every iteration (faint) with its running
    mean over the test interval, and the test loss at each recorded iteration; ``panels`` is
    a list of (title, history) with a history as :func:`hashbench.nets.load_history` gives
    it. The panels share their y axis."""
    fig = Figure(figsize=(5.5 * len(panels), 4), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)
    top = 0.0
    for ax, (title, h) in zip(axes[0], panels, strict=True):
        train = np.asarray(h["train"])
        it = np.arange(1, train.size + 1)
        window = int(h["test_iterations"][0]) if len(h["test_iterations"]) else max(1, train.size // 20)
        smooth = np.convolve(train, np.ones(window) / window, mode="valid")
        ax.plot(it, train, color="tab:blue", alpha=0.25, lw=0.6)
        ax.plot(it[window - 1:], smooth, color="tab:blue", label=f"train (mean of {window} iterations)")
        top = max(top, float(smooth.max()))
        if len(h["test_iterations"]):
            ax.plot(h["test_iterations"], h["test"], color="tab:red", marker=".", label="test")
            top = max(top, float(np.max(h["test"])))
        else:
            title += "\n(no test loss recorded)"
        ax.set(title=title, xlabel="iteration", ylabel="loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    # the first iterations' loss is many times the rest: scale to the curves, clip that spike
    axes[0][0].set_ylim(0, 1.15 * top)
    save(fig, stem)
    return fig


RED = (255, 0, 0)
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class GridLayout:
    """Pixel geometry of a retrieval grid: a title line, the query image, then one row of
    ``k`` retrieved images per method, its name on the left and its count of true matches on
    the right. Each image sits inside a ``frame``-pixel ring (red for a true match, white
    otherwise)."""

    n_rows: int
    k: int
    tile: int
    frame: int = 4
    gap: int = 6
    margin: int = 10
    name_w: int = 150
    count_w: int = 80
    text_h: int = 24

    @property
    def pitch(self) -> int:
        return self.tile + 2 * self.frame + self.gap

    def _rows_top(self) -> int:
        return self.margin + self.text_h + self.pitch + self.text_h // 2

    def query_box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the query image, ends exclusive."""
        x, y = self.margin + self.name_w + self.frame, self.margin + self.text_h + self.frame
        return x, y, x + self.tile, y + self.tile

    def tile_box(self, row: int, j: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of retrieved image ``j`` of method ``row``, ends exclusive."""
        x = self.margin + self.name_w + j * self.pitch + self.frame
        y = self._rows_top() + row * self.pitch + self.frame
        return x, y, x + self.tile, y + self.tile

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole image."""
        return (2 * self.margin + self.name_w + self.k * self.pitch + self.count_w,
                self._rows_top() + self.n_rows * self.pitch + self.margin)


def tile_scale(side: int, target: int = 64) -> int:
    """Integer nearest-neighbour magnification that shows an image at least ``target``
    pixels a side (8x8 digits x8, 32x32 CIFAR-10 x2, 64x64 NUS-WIDE x1)."""
    return max(1, -(-target // side))


def retrieval_grid(query: np.ndarray, title: str, rows, stem) -> list[Path]:
    """Supplementary Figures 7-18: ``query`` a uint8 (H, W, 3) image, ``title`` its line
    (the query's labels), ``rows`` a list of (method name, retrieved uint8 (k, H, W, 3)
    images in rank order, bool (k,) true matches). Returns the PNG and PDF paths."""
    from PIL import Image, ImageDraw, ImageFont

    scale = tile_scale(query.shape[0])
    k = len(rows[0][1])
    lay = GridLayout(len(rows), k, query.shape[0] * scale)
    canvas = np.full((lay.size[1], lay.size[0], 3), WHITE, np.uint8)

    def put(box, image):
        x0, y0, x1, y1 = box
        canvas[y0:y1, x0:x1] = image.repeat(scale, 0).repeat(scale, 1)

    put(lay.query_box(), query)
    for r, (_, images, relevant) in enumerate(rows):
        for j in range(k):
            x0, y0, x1, y1 = lay.tile_box(r, j)
            if relevant[j]:
                f = lay.frame
                canvas[y0 - f:y1 + f, x0 - f:x1 + f] = RED
            put((x0, y0, x1, y1), images[j])
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=14)
    draw.text((lay.margin, lay.margin), title, fill=(0, 0, 0), font=font)
    _, qy0, _, qy1 = lay.query_box()
    draw.text((lay.margin, (qy0 + qy1) // 2), "query", fill=(0, 0, 0), font=font, anchor="lm")
    for r, (name, _, relevant) in enumerate(rows):
        _, y0, x1, y1 = lay.tile_box(r, k - 1)
        mid = (y0 + y1) // 2
        draw.text((lay.margin, mid), name, fill=(0, 0, 0), font=font, anchor="lm")
        draw.text((x1 + lay.frame + lay.gap, mid), f"{int(np.sum(relevant))} / {k}", fill=(0, 0, 0), font=font,
                  anchor="lm")
    png = Path(f"{stem}.png")
    with atomic_write(png) as f:
        img.save(f, format="PNG")
    # the PDF holds the same pixels, losslessly (Pillow's own PDF writer stores RGB as JPEG)
    fig = Figure(figsize=(img.width / DPI, img.height / DPI), dpi=DPI)
    fig.figimage(np.asarray(img), 0, 0)
    pdf = Path(f"{stem}.pdf")
    with atomic_write(pdf) as f:
        fig.savefig(f, format="pdf", dpi=DPI)
    return [png, pdf]
