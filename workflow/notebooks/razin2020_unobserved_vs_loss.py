# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Razin & Cohen (2020): |unobserved entry| vs loss (Figure 1, perturbed appendix)
#
# One panel per depth (spec §3). x: the loss ½·Σ over the three observed
# entries, log scale, inverted (1e0 → 1e-4); y: |P11|. Each curve is cut right
# after its first logged loss below 1e-4.
#
# *iterations* mode (Figure 1): every run is a line coloured by iteration
# (``copper_r`` with red and blue swapped, ×0.85; one horizontal colorbar per
# panel), with grey markers (o, v, ^, D by run) at the first logged losses
# below 1.3e-1, 1.3e-2, 1.3e-3, 1.3e-4. Beyond the paper, the dashed line is
# the reference ``c/√loss``: with ``reference = "theory"`` c = 1/√2, the
# asymptote of the lower bound |P11| ≥ (1 − √(2ℓ))²/√(2ℓ) that holds while
# det(P) > 0; with ``"fit"`` c is the median over the panel's runs of
# median(|P11|·√loss) at loss ≤ 1.3e-2.
#
# *epsilon* mode (perturbed problems [[*, −2], [0.5, ε]]): one curve per ε,
# with the rank-1 completion value |P11| = 1/ε as a dashed line of the same
# colour (drawn when the curve gets within a factor 2.5 of it; others lie above the
# panel).

# %% tags=["parameters"]
runs_path = "results/razin2020_fig1/runs.parquet"
trajectories_path = "results/razin2020_fig1/trajectories.parquet"
markers_path = "results/razin2020_fig1/markers.parquet"
figure_pdf = "figures/razin2020_fig1.pdf"
figure_png = "figures/razin2020_fig1.png"
figure = "razin2020_fig1"
published_path = None  # config/published.yaml: published values drawn as "published" stars
mode = "auto"  # "iterations" (Fig 1), "epsilon" (perturbed) or "auto" (epsilon when b22 varies)
reference = "auto"  # "theory", "fit", "none" (iterations mode); "rank1" or "none" (epsilon mode)
panel_size = [3.1, 3.4]  # inches per panel, as the authors' figures
dpi = 250

# %%
from implicit_reg.figures.notebook_prelude import Image, Line2D, LineCollection, P, PM, display, mpl, np, pd, plt
from implicit_reg.razin2020 import tables as rt

# %%
# upgrade_columns: tables written before the column convention read like new ones.
runs = rt.upgrade_columns(pd.read_parquet(runs_path))
traj = rt.upgrade_columns(pd.read_parquet(trajectories_path))
markers = rt.upgrade_columns(pd.read_parquet(markers_path))
if runs.empty:
    raise ValueError(f"no runs in {runs_path}")
if mode == "auto":
    mode = "epsilon" if runs["b22"].nunique() > 1 else "iterations"
if reference == "auto":
    reference = "rank1" if mode == "epsilon" else "theory"
allowed = {"iterations": ("theory", "fit", "none"), "epsilon": ("rank1", "none")}
if mode not in allowed or reference not in allowed[mode]:
    raise ValueError(f"mode={mode!r} with reference={reference!r} is not supported")
depths = sorted(int(d) for d in runs["depth"].unique())
print(f"mode={mode}, reference={reference}, depths={depths}, runs={len(runs)}")

# The authors' colormap: copper_r with red and blue swapped, scaled by 0.85 (light blue → near black).
_copper = mpl.colormaps["copper_r"](np.linspace(0, 1, 256))
CMAP = mpl.colors.ListedColormap(np.column_stack([_copper[:, 2], _copper[:, 1], _copper[:, 0]]) * 0.85,
                                 name="copper_r_swapped")
MARKERS = ["o", "v", "^", "D", "s", "P", "X", "*"]


def curve(run_id: str) -> pd.DataFrame:
    """Logged rows of a run up to and including the first loss below 1e-4."""
    t = traj.loc[traj["run_id"] == run_id]
    cut = rt.first_below(t["train_loss"].to_numpy(), rt.CURVE_CUT_LOSS)
    return t if cut < 0 else t.iloc[: cut + 1]


def tick_text(v: float) -> str:
    """Colorbar tick as the authors' "d.de<exp>", e.g. 3.1e4."""
    if v <= 0:
        return "0"
    exp = int(np.floor(np.log10(v)))
    return f"{v / 10 ** exp:.1f}e{exp}"


def c_reference(panel_runs: pd.DataFrame) -> float:
    if reference == "theory":
        return rt.THEORY_C
    vals = panel_runs["c_fit"].dropna()
    return float(vals.median()) if len(vals) else float("nan")


marker_losses = markers.groupby("marker")["marker_loss"].first().to_dict() if "marker_loss" in markers else {}
CUT_LOSS = 1e-4  # curves are cut at the first logged loss below it


def draw_published(ax, depth: int) -> int:
    """Published |P11| at the grey markers (x: the marker's loss) and at the cut (x: 1e-4)."""
    drawn = 0
    at_marker = PM.select_points(PM.published_points(published_path, figure, "abs_unobserved"), depth=depth)
    at_marker = at_marker.loc[[isinstance(w.get("marker"), int) for w in at_marker["where"]]]
    if len(at_marker):
        xs = [float(marker_losses.get(w["marker"], np.nan)) for w in at_marker["where"]]
        PM.draw_published(ax, xs, at_marker["published"], label=False)
        drawn += len(at_marker)
    at_cut = PM.select_points(PM.published_points(published_path, figure, "abs_unobserved_at_cut"), depth=depth)
    if len(at_cut):
        PM.draw_published(ax, [CUT_LOSS] * len(at_cut), at_cut["published"], label=False)
        drawn += len(at_cut)
    return drawn


# %%
fig, axes = plt.subplots(1, len(depths), figsize=(panel_size[0] * len(depths), panel_size[1]),
                         squeeze=False, layout="constrained")
axes = axes[0]
reference_c = {}
for ax, depth in zip(axes, depths):
    pr = runs.loc[runs["depth"] == depth].sort_values(["run_index", "dataset", "rep"])
    ymax, xmax = 0.0, 1e-4
    if mode == "iterations":
        norm = mpl.colors.Normalize(1, max(int(pr["iterations"].max()), 2))
        for run in pr.itertuples():
            c = curve(run.run_id)
            x, y, it = c["train_loss"].to_numpy(), c["abs_unobserved"].to_numpy(), c["iteration"].to_numpy()
            ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
            x, y, it = x[ok], y[ok], it[ok]
            if len(x) > 1:
                seg = np.stack([np.column_stack([x[:-1], y[:-1]]), np.column_stack([x[1:], y[1:]])], axis=1)
                lc = LineCollection(seg, cmap=CMAP, norm=norm, linewidth=1.6, zorder=2)
                lc.set_array(it[1:])
                ax.add_collection(lc)
            if len(x):
                ymax, xmax = max(ymax, y.max()), max(xmax, x.max())
        handles = []
        for run in pr.loc[pr["rep"] == pr["rep"].min()].itertuples():
            k = int(run.run_index)
            style = {"marker": MARKERS[k % len(MARKERS)], "color": mpl.colormaps["gray_r"](0.35 + 0.17 * k),
                     "markersize": 7, "markeredgecolor": "black", "markeredgewidth": 0.5, "linestyle": "none"}
            handles.append(Line2D([], [], label=run.label, **style))
        for run in pr.itertuples():
            k = int(run.run_index)
            m = markers.loc[(markers["run_id"] == run.run_id) & (markers["row"] >= 0)]
            ax.plot(m["train_loss"], m["abs_unobserved"], zorder=4, marker=MARKERS[k % len(MARKERS)],
                    color=mpl.colormaps["gray_r"](0.35 + 0.17 * k), markersize=7, markeredgecolor="black",
                    markeredgewidth=0.5, linestyle="none")
        sm = mpl.cm.ScalarMappable(norm=norm, cmap=CMAP)
        cb = fig.colorbar(sm, ax=ax, orientation="horizontal", pad=0.02, aspect=30)
        ticks = np.linspace(1, norm.vmax, 4)
        cb.set_ticks(ticks)
        cb.set_ticklabels([tick_text(t) for t in ticks])
        cb.set_label("iterations")
        cref = c_reference(pr) if reference != "none" else float("nan")
        reference_c[depth] = cref
        if np.isfinite(cref):
            grid = np.logspace(0, -4, 200)
            text = "1/\u221a(2\u00b7loss), det>0 bound" if reference == "theory" else f"{cref:.3g}/\u221aloss (fit)"
            ref_line = ax.plot(grid, cref / np.sqrt(grid), color="0.35", linestyle="--", linewidth=1.0,
                               zorder=1, label=text)[0]
            handles.append(ref_line)
        if draw_published(ax, depth):
            handles.append(Line2D([], [], label=PM.PUBLISHED_LABEL,
                                  **{k: v for k, v in PM.PUBLISHED_STYLE.items() if k != "zorder"}))
        ax.legend(handles=handles, fontsize=6.5, loc="upper left", framealpha=0.85)
    else:
        names = sorted(pr["dataset"].unique(), key=lambda n: float(pr.loc[pr["dataset"] == n, "b22"].iloc[0]))
        colors = P.sequential_colors(len(names), "viridis", 0.0, 0.85)
        for name, color in zip(names, colors):
            sel = pr.loc[pr["dataset"] == name]
            eps = float(sel["b22"].iloc[0])
            for j, run in enumerate(sel.itertuples()):
                c = curve(run.run_id)
                x, y = c["train_loss"].to_numpy(), c["abs_unobserved"].to_numpy()
                ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
                ax.plot(x[ok], y[ok], color=color, linewidth=1.6, zorder=2,
                        label=f"\u03b5 = {eps:.3g}" if j == 0 else None)
                if ok.any():
                    ymax, xmax = max(ymax, y[ok].max()), max(xmax, x[ok].max())
            if reference == "rank1" and eps > 0:
                ax.axhline(1.0 / eps, color=color, linestyle="--", linewidth=1.2, zorder=1.8)
                # show a 1/eps line when the curve gets within a factor 2.5 of it
                top = np.nanmax(np.abs(sel["abs_unobserved_at_cut"].to_numpy(dtype=float)), initial=0.0)
                ymax = max(ymax, min(1.0 / eps, 2.5 * top))
        if reference == "rank1":
            ax.plot([], [], color="0.4", linestyle="--", linewidth=1.0, label="1/\u03b5 (rank-1 completion)")
        ax.legend(fontsize=6.5, loc="upper left", framealpha=0.85)
    P.mark_failed_runs(ax, pr.assign(_x=pr["train_loss_at_cut"], _y=pr["abs_unobserved_at_cut"]), "_x", "_y",
                       annotate=True, text_loc=(0.97, 0.04))
    ax.set_xscale("log")
    ax.set_xlim(max(xmax, 1e-3), 1e-4)
    ax.set_ylim(0, 1.05 * ymax if ymax > 0 else 1.0)
    ax.set_xlabel("loss")
    ax.set_title(f"depth {depth}", fontsize=14)
axes[0].set_ylabel("|unobserved entry|")

P.save_figure(fig, figure_pdf, figure_png, dpi=dpi)
plt.close(fig)
display(Image(filename=figure_png))

# %% [markdown]
# ## Plotted numbers
# Per run: status, iterations, |P11| at the first loss below 1e-4 (the end of
# the curve), fitted c of |P11| ≈ c/√loss (loss ≤ 1.3e-2), final det(P), and
# the batch's wall time. Then |P11| at the four markers.

# %%
cols = ["depth", "label", "b22", "rep", "seed", "status", "iterations", "train_loss_at_cut",
        "abs_unobserved_at_cut", "c_fit", "det_final", "wall_seconds"]
print(runs[cols].to_string(index=False))
if reference_c:
    print("\nreference c per depth:", {d: round(c, 4) for d, c in reference_c.items()})
print()
wide = markers.pivot_table(index=["depth", "label", "b22", "rep"], columns="marker_loss",
                           values="abs_unobserved", aggfunc="first", dropna=False)
wide = wide[sorted(wide.columns, reverse=True)]
print(wide.round(3).to_string())
print()
print(P.failed_runs_report(runs, ["run_id", "iterations", "final_train_loss"]))
