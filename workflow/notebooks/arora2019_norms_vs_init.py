# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Arora et al. (2019), notebook Figure 2 (N2) / Appendix Figure 2 (NA2)
#
# Reconstruction error, nuclear norm and effective rank vs. initialization
# scale (spec §2.N2, §2.NA2). Rows: number of observations; columns: error
# (log y), nuclear norm, effective rank. Series: depths 2, 3, 4 at one learning
# rate, mean ± population std over seeds, x = 10 × init scale (log). Horizontal
# lines: minimum-nuclear-norm solution (red, all columns) and ground truth
# (purple, nuclear norm and effective rank). Runs that did not converge are
# drawn as hollow red markers (▲ at the top of the panel when they have no
# value) and counted in the error panel of each row.

# %% tags=["parameters"]
runs_path = "results/arora2019_n2/runs.parquet"  # runs table (parquet)
trajectories_path = None  # passed by the render rule; unused here
published_path = None  # config/published.yaml: published values drawn as "published" stars
figure_pdf = "figures/arora2019_n2.pdf"
figure_png = "figures/arora2019_n2.png"
task = "completion"  # "completion" (N2) or "sensing" (NA2)
rank = None  # ground-truth rank to plot; None: the smallest present
lr = 1e-3  # learning rate of the plotted runs (closest present value is used)
n_obs_values = None  # rows; None: every n_obs present
error_ylim = [1e-7, 0.15]  # widened automatically if data falls outside
nuclear_norm_ylim = None  # None: from the data with margins; spec: [210, 223] (N2), [220, 228] (NA2)
erank_ylim = [4, 11]  # widened automatically if data falls outside; spec NA2: [4, 10]
figsize = [16.5, 5.5]  # for two rows; the height scales with the number of rows
dpi = 150

# %%
from implicit_reg.figures.notebook_prelude import Image, P, PM, Path, display, np, pd, plt

# %%
runs = pd.read_parquet(runs_path)
runs = runs.loc[runs["task"] == task]
gd_all = runs.loc[runs["method"] == "deep_factorization"]
if gd_all.empty:
    raise ValueError(f"no deep_factorization runs with task={task!r} in {runs_path}")
ranks = sorted(gd_all["rank"].unique())
rank = int(ranks[0]) if rank is None else int(rank)
if len(ranks) > 1:
    print(f"note: ranks {ranks} present, plotting rank {rank}")
gd_all = gd_all.loc[gd_all["rank"] == rank]
lr_used = P.closest_value(gd_all["lr"], lr)
if lr is None or not np.isclose(lr_used, lr, rtol=1e-6):
    print(f"note: lr={lr} not present, using lr={lr_used}")
gd = gd_all.loc[np.isclose(gd_all["lr"], lr_used, rtol=1e-6)]
n_obs_values = sorted(gd["n_obs"].unique()) if n_obs_values is None else [int(m) for m in n_obs_values]
gd = gd.loc[gd["n_obs"].isin(n_obs_values)]
depths = sorted(int(d) for d in gd["depth"].unique())
cvx = runs.loc[(runs["method"] == "min_nuclear_norm") & (runs["rank"] == rank)]
gt = runs.loc[(runs["method"] == "ground_truth") & (runs["rank"] == rank)]

metrics = [  # column, label, log axis, default limits
    ("recon_error_sq", "reconstruction error", True, error_ylim),
    ("nuclear_norm", "nuclear norm", False, nuclear_norm_ylim),
    ("effective_rank", "effective rank", False, erank_ylim),
]
keys = ["n_obs", "depth", "init_scale"]
# Means over every run with a final value: runs stopped at the iteration cap are in the
# mean (as in the paper) and drawn as orange squares; diverged runs are left out and drawn
# in red (pinned to the panel edge when off the axis). implicit_reg.figures.run_status.
aggs = {col: P.mean_std_by(gd, keys, col) for col, *_ in metrics}
published = PM.published_points(published_path, Path(runs_path).parent.name)
n_published = 0


def baseline(table: pd.DataFrame, m: int, col: str) -> tuple[float, str]:
    """Value of a one-per-dataset row (CVX or ground truth) for n_obs m, and its status."""
    rows = table.loc[table["n_obs"] == m] if "n_obs" in table else table.iloc[0:0]
    if rows.empty:
        rows = table  # ground truth stored once per rank
    if rows.empty:
        return float("nan"), ""
    row = rows.iloc[0]
    return float(pd.to_numeric(row[col], errors="coerce")), str(row.get("status", ""))


# %%
nrows, ncols = len(n_obs_values), len(metrics)
height = figsize[1] if nrows == 2 else figsize[1] / 2 * nrows + 0.4
fig, axes = plt.subplots(nrows, ncols, figsize=(figsize[0], height), squeeze=False, sharex=True,
                         layout="constrained")
x10 = lambda s: 10 * np.asarray(s, dtype=float)  # noqa: E731

limits = {}
for col, label, log, default in metrics:
    agg = aggs[col]
    vals = [*(agg["mean"] + agg["std"]), *(agg["mean"] - agg["std"])]
    vals += [baseline(cvx, m, col)[0] for m in n_obs_values]
    if col != "recon_error_sq":
        vals += [baseline(gt, m, col)[0] for m in n_obs_values]
    lim = P.auto_limits([v for v in vals if not (log and v <= 0)], default, log=log)
    if default is not None and lim is not None and tuple(lim) != tuple(default):
        print(f"note: {label} axis widened from {list(default)} to {[float(f'{v:.4g}') for v in lim]}")
    limits[col] = lim

for i, m in enumerate(n_obs_values):
    for j, (col, label, log, _) in enumerate(metrics):
        ax = axes[i, j]
        agg = aggs[col]
        for depth in depths:
            sel = agg.loc[(agg["n_obs"] == m) & (agg["depth"] == depth)]
            P.errorbar_series(ax, sel, "init_scale", x_transform=x10, label=f"depth {depth}",
                              **P.depth_style(depth))
        value, status = baseline(cvx, m, col)
        if np.isfinite(value):
            cvx_label = "nuclear" if status in P.OK_STATUSES else f"nuclear ({status})"
            ax.axhline(value, label=cvx_label, zorder=1.8, **P.MIN_NUCLEAR_NORM_STYLE)
        elif status:  # a CVX row exists but has no value (infeasible, solver error)
            ax.text(0.98, 0.5, f"min nuclear norm: {status}", transform=ax.transAxes, ha="right",
                    color="C3", fontsize=8)
        if col != "recon_error_sq":
            value, _ = baseline(gt, m, col)
            if np.isfinite(value):
                ax.axhline(value, label="gt", zorder=1.8, **P.GROUND_TRUTH_STYLE)
        panel = gd.loc[gd["n_obs"] == m]
        # markers in every column, the count once per row (same runs in all columns)
        P.mark_failed_runs(ax, panel, "init_scale", col, x_transform=x10, annotate=j == 0,
                           text_loc=(0.02, 0.04), ylim=limits[col])
        # values quoted for another lr belong to the N1 figure, not this one
        n_published += PM.draw_panel(ax, published.loc[published["metric"] == col], "init_scale", x10,
                      n_obs=m, rank=rank, task=task, lr=lr_used)
        ax.set_xscale("log")
        if log:
            ax.set_yscale("log")
        if limits[col] is not None:
            ax.set_ylim(*limits[col])
        ax.set_title(f"{label}, # = {P.format_count(m)}")
        if i == nrows - 1:
            ax.set_xlabel("10 × init scale")
        if j == 0:
            ax.set_ylabel(label)
axes[-1, -1].legend(*P.legend_entries(axes, ("depth", "nuclear", "gt")), loc="best", fontsize=9)

P.save_figure(fig, figure_pdf, figure_png, dpi=dpi)
plt.close(fig)
display(Image(filename=figure_png))  # the saved PNG (avoids rendering the figure twice)

# %% [markdown]
# ## Plotted numbers
# Mean ± population std over seeds (columns: init scale). A bracket lists runs
# that did not converge; diverged runs do not enter the mean, runs stopped at the
# iteration cap do.

# %%
print(f"published values drawn: {n_published}")
print(f"task={task}, rank={rank}, lr={P.format_sci(lr_used)}, runs={len(gd)}, "
      f"seeds per point={sorted(int(k) for k in aggs['recon_error_sq']['n_runs'].unique())}")
for col, label, *_ in metrics:
    print(f"\n{label} ({col}):")
    print(P.pivot_mean_std(aggs[col], ["n_obs", "depth"], "init_scale").to_string())
base_cols = ["method", "n_obs", "recon_error_sq", "nuclear_norm", "effective_rank", "status"]
base = pd.concat([cvx, gt])
print("\nbaselines (min_nuclear_norm = red, ground_truth = purple):")
print(base[[c for c in base_cols if c in base]].to_string(index=False) if not base.empty else "none in table")
print()
print(P.failed_runs_report(pd.concat([gd, cvx]), ["run_id", "method", *keys, "lr", "seed", "iterations"]))
