# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Arora et al. (2019), NeurIPS Figure 1 (completion) / Figure 4 (sensing)
#
# Final squared normalized reconstruction error vs. number of observations,
# one panel per ground-truth rank plus a magnified copy of one panel (spec
# §2.1, §2.4). Series: depths 2, 3, 4 at the base (largest) init scale, plus
# the other init scales present, labelled by their ratio to the base ("depth 2,
# init/2"). Markers at the mean over seeds, error bars = population std
# (ddof = 0). Runs that did not converge are drawn as hollow red markers (▲ at
# the top of the panel when they have no value) and counted in the panel.

# %% tags=["parameters"]
runs_path = "results/arora2019_fig1/runs.parquet"  # runs table (parquet)
trajectories_path = None  # passed by the render rule; unused here
published_path = None  # config/published.yaml: published values drawn as "published" stars
figure_pdf = "figures/arora2019_fig1.pdf"
figure_png = "figures/arora2019_fig1.png"
task = "completion"  # "completion" (Fig 1) or "sensing" (Fig 4)
y_scale = "linear"  # "linear" (spec §2.1, recalled) or "log"
lr = None  # learning rate of the plotted runs; None: the largest present
zoom = True  # add the magnified panel
zoom_rank = None  # rank whose panel is magnified; None: the smallest rank
zoom_ylim = None  # [lo, hi] of the magnified panel; None: the lowest 10% of that panel
zoom_xlim = None  # [lo, hi] of the magnified panel; None: where curves enter the zoom window
show_min_nuclear_norm = False  # also draw min-nuclear-norm rows (method min_nuclear_norm), if any
figsize = [15, 4.2]
dpi = 150

# %%
from implicit_reg.figures.notebook_prelude import Image, P, PM, Path, display, np, pd, plt

# %%
if y_scale not in ("linear", "log"):
    raise ValueError(f"y_scale must be 'linear' or 'log', got {y_scale!r}")
runs = pd.read_parquet(runs_path)
runs = runs.loc[runs["task"] == task]
gd = runs.loc[runs["method"] == "deep_factorization"]
if gd.empty:
    raise ValueError(f"no deep_factorization runs with task={task!r} in {runs_path}")
lrs = sorted(float(x) for x in gd["lr"].dropna().unique())
lr_used = P.closest_value(lrs, lr)
if len(lrs) > 1 or (lr is not None and not np.isclose(lr_used, lr, rtol=1e-6)):
    print(f"note: learning rates {lrs} present, plotting lr={lr_used}")
gd = gd.loc[np.isclose(gd["lr"], lr_used, rtol=1e-6)]
ranks = sorted(int(r) for r in gd["rank"].unique())
depths = sorted(int(d) for d in gd["depth"].unique())
base_init = float(gd["init_scale"].max())
cvx = runs.loc[runs["method"] == "min_nuclear_norm"] if show_min_nuclear_norm else runs.iloc[0:0]

keys = ["rank", "n_obs", "depth", "init_scale"]
agg = P.mean_std_by(gd, keys, "recon_error_sq")


def series_label(depth: int, init_scale: float) -> str:
    ratio = P.init_ratio_label(init_scale, base_init)
    return f"depth {depth}" if ratio == "init" else f"depth {depth}, {ratio}"


agg["series"] = [series_label(d, s) for d, s in zip(agg["depth"], agg["init_scale"])]


def series_styles() -> dict[tuple[int, float], dict]:
    """Depth colour/marker; non-base init scales get a lighter tint and another line style."""
    styles = {}
    for depth in depths:
        inits = sorted(gd.loc[gd["depth"] == depth, "init_scale"].unique(), reverse=True)
        base = P.depth_style(depth)
        k = 0
        for init in inits:
            if np.isclose(init, base_init, rtol=1e-9):
                styles[(depth, init)] = dict(base, linestyle="-")
            else:
                k += 1
                styles[(depth, init)] = dict(
                    base, color=P.tint(base["color"], min(0.25 * k, 0.6)),
                    linestyle=P.LINESTYLE_CYCLE[k % len(P.LINESTYLE_CYCLE)], markersize=5)
    return styles


styles = series_styles()
series_order = sorted(styles, key=lambda t: (t[0], -t[1]))

# %%
zoom_rank_used = (ranks[0] if zoom_rank is None else int(zoom_rank)) if zoom else None
if zoom_rank_used is not None and zoom_rank_used not in ranks:
    print(f"note: zoom_rank={zoom_rank_used} not present; no magnified panel")
    zoom_rank_used = None
panels = [(r, False) for r in ranks] + ([(zoom_rank_used, True)] if zoom_rank_used is not None else [])
fig, axes = plt.subplots(1, len(panels), figsize=tuple(figsize), squeeze=False, layout="constrained")
axes = axes[0]


published = PM.published_points(published_path, Path(runs_path).parent.name, "recon_error_sq")


def draw(ax, rank: int) -> None:
    for depth, init in series_order:
        sel = agg.loc[(agg["rank"] == rank) & (agg["depth"] == depth) & (agg["init_scale"] == init)]
        P.errorbar_series(ax, sel, "n_obs", label=series_label(depth, init), **styles[(depth, init)])
    base = cvx.loc[cvx["rank"] == rank].sort_values("n_obs")
    if not base.empty:
        ax.plot(base["n_obs"], base["recon_error_sq"], marker="s", markersize=4, label="min nuclear norm",
                zorder=1.8, **P.MIN_NUCLEAR_NORM_STYLE)
    PM.draw_panel(ax, published, "n_obs", rank=rank, task=task)


for ax, (rank, magnified) in zip(axes, panels):
    draw(ax, rank)
    panel_runs = pd.concat([gd.loc[gd["rank"] == rank], cvx.loc[cvx["rank"] == rank]])
    P.mark_failed_runs(ax, panel_runs, "n_obs", "recon_error_sq", text_loc=(0.98, 0.60))
    ax.set_yscale(y_scale)
    ax.set_xlabel(P.n_obs_label(task))
    ax.set_title(f"rank {rank}" + (", magnified" if magnified else ""))
    if not magnified:
        continue
    means = agg.loc[agg["rank"] == rank, ["n_obs", "mean"]].dropna()
    top = means["mean"].max() if not means.empty else 1.0
    if zoom_ylim is not None:
        ylo, yhi = map(float, zoom_ylim)
    elif y_scale == "linear":
        yhi = 0.1 * top
        ylo = -0.04 * yhi
    else:
        pos = means.loc[means["mean"] > 0, "mean"]
        lo = pos.min() if not pos.empty else 1e-7
        ylo, yhi = lo / 2, float(np.sqrt(lo * top))
    ax.set_ylim(ylo, yhi)
    if zoom_xlim is not None:
        ax.set_xlim(*map(float, zoom_xlim))
    else:
        grid = np.sort(means["n_obs"].unique())
        inside = np.sort(means.loc[means["mean"] <= yhi, "n_obs"].unique())
        if inside.size and grid.size > 1:
            start = grid[max(np.searchsorted(grid, inside[0]) - 1, 0)]
            pad = 0.03 * (grid[-1] - start)
            ax.set_xlim(start - pad, grid[-1] + pad)
    print(f"magnified panel: rank {rank}, y-limits {[float(f'{v:.3g}') for v in ax.get_ylim()]}, "
          f"x-limits {[float(f'{v:.4g}') for v in ax.get_xlim()]}")

axes[0].set_ylabel("reconstruction error")
axes[0].legend(*P.legend_entries(axes, ("depth", "min")), loc="upper right", fontsize=9)

P.save_figure(fig, figure_pdf, figure_png, dpi=dpi)
plt.close(fig)
display(Image(filename=figure_png))  # the saved PNG (avoids rendering the figure twice)

# %% [markdown]
# ## Plotted numbers
# Mean ± population std of the final squared reconstruction error over seeds
# (columns: series). A bracket lists runs that did not converge; diverged runs
# do not enter the mean, runs stopped at the iteration cap do.

# %%
print(f"task={task}, lr={P.format_sci(lr_used)}, base init scale={P.format_sci(base_init)}, runs={len(gd)}, "
      f"seeds per point={sorted(int(k) for k in agg['n_runs'].unique())}")
print(P.pivot_mean_std(agg, ["rank", "n_obs"], "series").to_string())
if not cvx.empty:
    print("\nmin nuclear norm:")
    print(cvx[["rank", "n_obs", "recon_error_sq", "status"]].sort_values(["rank", "n_obs"]).to_string(index=False))
print()
print(P.failed_runs_report(pd.concat([gd, cvx]), ["run_id", *keys, "lr", "seed", "iterations"]))
