# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Arora et al. (2019), notebook Figure 1 (N1) / Appendix Figure 1 (NA1)
#
# Reconstruction error vs. initialization scale, two learning rates (spec §2.N1,
# §2.NA1). Rows: number of observations; columns: depth. x = 10 × init scale
# (log), y = final squared normalized reconstruction error (log, [1e-7, 0.15]).
# Markers at the mean over seeds, error bars = population std (ddof = 0).
# Runs that did not converge are drawn as hollow red markers (▲ at the top of
# the panel when they have no value) and counted in the panel.

# %% tags=["parameters"]
runs_path = "results/arora2019_n1/runs.parquet"  # runs table (parquet)
trajectories_path = None  # passed by the render rule; unused here
published_path = None  # config/published.yaml: published values drawn as "published" stars
figure_pdf = "figures/arora2019_n1.pdf"
figure_png = "figures/arora2019_n1.png"
task = "completion"  # "completion" (N1) or "sensing" (NA1)
rank = None  # ground-truth rank to plot; None: the smallest present
n_obs_values = None  # rows; None: every n_obs present
ylim = [1e-7, 0.15]  # error axis; widened automatically if data falls outside
figsize = [15, 4.6]  # for two rows; the height scales with the number of rows
dpi = 150

# %%
from implicit_reg.figures.notebook_prelude import Image, P, PM, Path, display, np, pd, plt

# %%
runs = pd.read_parquet(runs_path)
runs = runs.loc[runs["task"] == task]
gd = runs.loc[runs["method"] == "deep_factorization"]
if gd.empty:
    raise ValueError(f"no deep_factorization runs with task={task!r} in {runs_path}")
ranks = sorted(gd["rank"].unique())
rank = int(ranks[0]) if rank is None else int(rank)
if len(ranks) > 1:
    print(f"note: ranks {ranks} present, plotting rank {rank}")
gd = gd.loc[gd["rank"] == rank]
n_obs_values = sorted(gd["n_obs"].unique()) if n_obs_values is None else [int(m) for m in n_obs_values]
gd = gd.loc[gd["n_obs"].isin(n_obs_values)]
depths = sorted(int(d) for d in gd["depth"].unique())
lrs = sorted((float(x) for x in gd["lr"].unique()), reverse=True)

keys = ["n_obs", "depth", "lr", "init_scale"]
# Means over every run with a final value: runs stopped at the iteration cap are in the
# mean (as in the paper) and drawn as orange squares; diverged runs are left out and drawn
# in red (pinned to the panel edge when off the axis). implicit_reg.figures.run_status.
agg = P.mean_std_by(gd, keys, "recon_error_sq")
published = PM.published_points(published_path, Path(runs_path).parent.name, "recon_error_sq")
n_published = 0

# %%
nrows, ncols = len(n_obs_values), len(depths)
height = figsize[1] if nrows == 2 else figsize[1] / 2 * nrows + 0.4
fig, axes = plt.subplots(nrows, ncols, figsize=(figsize[0], height), squeeze=False,
                         sharex=True, sharey=True, layout="constrained")
x10 = lambda s: 10 * np.asarray(s, dtype=float)  # noqa: E731

ylim_used = P.auto_limits(
    [*(agg["mean"] + agg["std"]), *(agg["mean"] - agg["std"]).where(lambda v: v > 0)], ylim, log=True)
if tuple(ylim_used) != tuple(ylim):
    print(f"note: error axis widened from {list(ylim)} to {list(ylim_used)} to show all data")

for i, m in enumerate(n_obs_values):
    for j, depth in enumerate(depths):
        ax = axes[i, j]
        for lr in lrs:
            sel = agg.loc[(agg["n_obs"] == m) & (agg["depth"] == depth) & (agg["lr"] == lr)]
            P.errorbar_series(ax, sel, "init_scale", x_transform=x10, label=f"lr = {P.format_sci(lr)}",
                              **P.lr_style(lr, lrs))
        panel = gd.loc[(gd["n_obs"] == m) & (gd["depth"] == depth)]
        P.mark_failed_runs(ax, panel, "init_scale", "recon_error_sq", x_transform=x10,
                           text_loc=(0.98, 0.04), ylim=ylim_used)
        if panel.empty:
            ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center", color="0.5")
        n_published += PM.draw_panel(ax, published, "init_scale", x10, n_obs=m, depth=depth, rank=rank, task=task)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(*ylim_used)
        ax.set_title(f"depth {depth}, # = {P.format_count(m)}")
        if i == nrows - 1:
            ax.set_xlabel("10 × init scale")
        if j == 0:
            ax.set_ylabel("reconstruction error")
axes[0, 0].legend(*P.legend_entries(axes, ("lr",)), loc="best")

P.save_figure(fig, figure_pdf, figure_png, dpi=dpi)
plt.close(fig)
display(Image(filename=figure_png))  # the saved PNG (avoids rendering the figure twice)

# %% [markdown]
# ## Plotted numbers
# Mean ± population std of the final squared reconstruction error over seeds
# (columns: init scale). A bracket lists runs that did not converge; diverged
# runs do not enter the mean, runs stopped at the iteration cap do.

# %%
print(f"published values drawn: {n_published}")
print(f"task={task}, rank={rank}, runs={len(gd)}, seeds per point={sorted(int(k) for k in agg['n_runs'].unique())}")
print(P.pivot_mean_std(agg, ["n_obs", "depth", "lr"], "init_scale").to_string())
print()
print(P.failed_runs_report(gd, ["run_id", *keys, "seed", "iterations"]))
