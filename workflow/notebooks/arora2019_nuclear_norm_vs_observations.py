# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Arora et al. (2019), NeurIPS Figure 2 (completion) / Figure 5 (sensing)
#
# "Is the implicit regularization nuclear norm minimization?" (spec §2.2,
# §2.4). Rows: reconstruction error (log y), nuclear norm, effective rank;
# one column per depth; x = number of observations. One series per
# (learning rate, init scale): colour by init scale (darker = smaller), line
# style by learning rate; mean ± population std over seeds. Red: the
# minimum-nuclear-norm solution at each number of observations; purple: the
# ground truth (nuclear norm and effective rank). Runs that did not converge
# are drawn as hollow red markers (▲ at the top of the panel when they have
# no value) and counted in the error panel of each column.

# %% tags=["parameters"]
runs_path = "results/arora2019_fig2/runs.parquet"  # runs table (parquet)
trajectories_path = None  # passed by the render rule; unused here
figure_pdf = "figures/arora2019_fig2.pdf"
figure_png = "figures/arora2019_fig2.png"
task = "completion"  # "completion" (Fig 2) or "sensing" (Fig 5)
rank = None  # ground-truth rank to plot; None: the smallest present
error_ylim = None  # [lo, hi] of the error row (log); None: from the data
nuclear_norm_ylim = None  # [lo, hi]; None: from the data with margins
erank_ylim = None  # [lo, hi]; None: from the data with margins
figsize = None  # [width, height]; None: 4.2 per depth column + legend, 9 high
dpi = 150

# %%
from implicit_reg.figures.notebook_prelude import Image, Line2D, P, display, np, pd, plt

# %%
runs = pd.read_parquet(runs_path)
runs = runs.loc[runs["task"] == task]
gd = runs.loc[runs["method"] == "deep_factorization"]
if gd.empty:
    raise ValueError(f"no deep_factorization runs with task={task!r} in {runs_path}")
ranks = sorted(int(r) for r in gd["rank"].unique())
rank = ranks[0] if rank is None else int(rank)
if len(ranks) > 1:
    print(f"note: ranks {ranks} present, plotting rank {rank}")
gd = gd.loc[gd["rank"] == rank]
cvx = runs.loc[(runs["method"] == "min_nuclear_norm") & (runs["rank"] == rank)].sort_values("n_obs")
gt = runs.loc[(runs["method"] == "ground_truth") & (runs["rank"] == rank)].sort_values("n_obs")
depths = sorted(int(d) for d in gd["depth"].unique())
lrs = sorted((float(x) for x in gd["lr"].unique()), reverse=True)
inits = sorted(float(x) for x in gd["init_scale"].unique())  # ascending: darkest first
init_colors = dict(zip(inits, P.sequential_colors(len(inits), "viridis", 0.15, 0.88)))
lr_styles = {lr: P.LINESTYLE_CYCLE[i % len(P.LINESTYLE_CYCLE)] for i, lr in enumerate(lrs)}

metrics = [  # column, label, log axis, limits parameter
    ("recon_error_sq", "reconstruction error", True, error_ylim),
    ("nuclear_norm", "nuclear norm", False, nuclear_norm_ylim),
    ("effective_rank", "effective rank", False, erank_ylim),
]
keys = ["depth", "lr", "init_scale", "n_obs"]
aggs = {col: P.mean_std_by(gd, keys, col) for col, *_ in metrics}


def series_label(lr: float, init: float) -> str:
    return f"lr {P.format_sci(lr)}, init {P.format_sci(init)}"


# %%
ncols = len(depths)
size = tuple(figsize) if figsize is not None else (4.2 * ncols + 2.4, 9.0)
fig, axes = plt.subplots(3, ncols, figsize=size, squeeze=False, sharex=True, sharey="row",
                         layout="constrained")

for i, (col, label, log, ylim) in enumerate(metrics):
    agg = aggs[col]
    for j, depth in enumerate(depths):
        ax = axes[i, j]
        for lr in lrs:
            for init in sorted(inits, reverse=True):
                sel = agg.loc[(agg["depth"] == depth) & (agg["lr"] == lr) & (agg["init_scale"] == init)]
                P.errorbar_series(ax, sel, "n_obs", label=series_label(lr, init), color=init_colors[init],
                                  linestyle=lr_styles[lr], marker=P.depth_style(depth)["marker"],
                                  markersize=5, capsize=2)
        ok_cvx = cvx.loc[np.isfinite(pd.to_numeric(cvx[col], errors="coerce"))]
        if not ok_cvx.empty:
            ax.plot(ok_cvx["n_obs"], ok_cvx[col], marker="s", markersize=5, label="min nuclear norm",
                    zorder=1.8, **{**P.MIN_NUCLEAR_NORM_STYLE, "linewidth": 2})
        if col != "recon_error_sq" and not gt.empty:
            vals = pd.to_numeric(gt[col], errors="coerce")
            if gt["n_obs"].nunique() > 1:
                ax.plot(gt["n_obs"], vals, label="ground truth", zorder=1.7, **P.GROUND_TRUTH_STYLE)
            elif np.isfinite(vals.iloc[0]):
                ax.axhline(vals.iloc[0], label="ground truth", zorder=1.7, **P.GROUND_TRUTH_STYLE)
        # markers in every row, the count once per column (same runs in all rows)
        P.mark_failed_runs(ax, pd.concat([gd.loc[gd["depth"] == depth], cvx]), "n_obs", col,
                           annotate=i == 0, text_loc=(0.98, 0.96))
        if log:
            ax.set_yscale("log")
        if i == 0:
            ax.set_title(f"depth {depth}")
        if i == 2:
            ax.set_xlabel(P.n_obs_label(task))
        if j == 0:
            ax.set_ylabel(label)
    # one y-range per row (shared), from the parameter or the data
    if ylim is not None:
        axes[i, 0].set_ylim(*map(float, ylim))
    else:
        vals = [*(agg["mean"] + agg["std"]), *(agg["mean"] - agg["std"]), *pd.to_numeric(cvx[col], errors="coerce")]
        if col != "recon_error_sq":
            vals += list(pd.to_numeric(gt[col], errors="coerce"))
        vals += list(pd.to_numeric(gd.loc[P.failed_mask(gd), col], errors="coerce"))
        lim = P.auto_limits([v for v in vals if not (log and v <= 0)], log=log, margin=0.06)
        if lim is not None:
            axes[i, 0].set_ylim(*lim)

# legend without markers: the marker only repeats the column's depth
handles, labels = P.legend_entries(axes, ("lr", "min", "ground"))
plain = []
for h, lab in zip(handles, labels):
    line = h[0] if isinstance(h, tuple) else h  # ErrorbarContainer is a tuple: data line first
    plain.append(Line2D([], [], color=line.get_color(), linestyle=line.get_linestyle(),
                        linewidth=line.get_linewidth(),
                        marker="s" if lab == "min nuclear norm" else None, markersize=5))
fig.legend(plain, labels, loc="outside right center", fontsize=9)

P.save_figure(fig, figure_pdf, figure_png, dpi=dpi)
plt.close(fig)
display(Image(filename=figure_png))  # the saved PNG (avoids rendering the figure twice)

# %% [markdown]
# ## Plotted numbers
# Mean ± population std over seeds (columns: number of observations). A
# bracket lists runs that did not converge; diverged runs do not enter the mean,
# runs stopped at the iteration cap do.

# %%
print(f"task={task}, rank={rank}, runs={len(gd)}, "
      f"seeds per point={sorted(int(k) for k in aggs['recon_error_sq']['n_runs'].unique())}")
for col, label, *_ in metrics:
    print(f"\n{label} ({col}):")
    print(P.pivot_mean_std(aggs[col], ["depth", "lr", "init_scale"], "n_obs").to_string())
base = pd.concat([cvx, gt])
print("\nbaselines (min_nuclear_norm = red, ground_truth = purple):")
cols = ["method", "n_obs", "recon_error_sq", "nuclear_norm", "effective_rank", "status"]
print(base[cols].to_string(index=False) if not base.empty else "none in table")
print()
print(P.failed_runs_report(pd.concat([gd, cvx]), ["run_id", "method", *keys, "seed", "iterations"]))
