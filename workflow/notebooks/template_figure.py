# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Template of a new figure (Arora et al.'s runs tables)
#
# Copy this file (anywhere in the repository), name it in a figure's `notebook:` key and
# change what it plots: docs/adding-a-figure.md. As it stands it draws one column of the
# runs table (`y`) against another (`x`): one line per depth, the mean over seeds with
# population-std error bars (ddof = 0, as the papers), one panel per ground-truth rank.
# Diverged runs are left out of the mean and drawn in red; runs stopped at the iteration
# cap are in the mean and drawn as orange squares (implicit_reg.figures.run_status).

# %% tags=["parameters"]
# Every figure notebook receives these from the render rule (papermill parameters):
runs_path = "results/arora2019_fig4/runs.parquet"  # results/<figure>/runs.parquet
trajectories_path = None  # results/<figure>/trajectories.parquet (one row per logged iteration)
published_path = None  # config/published.yaml (published values of this figure, if any)
figure_pdf = "figures/template_figure.pdf"
figure_png = "figures/template_figure.png"
# ... and these from the figure's notebook_params (defaults here):
x = "n_obs"  # a key column of the runs table: n_obs, init_scale, lr, depth, rank
y = "effective_rank"  # a value column: recon_error_sq, recon_error, nuclear_norm, effective_rank, test_mse
x_label = None  # axis labels; None: the column names
y_label = None
log_x = False
log_y = False
ground_truth_line = True  # also draw the ground truth's value of y (a figure with ground_truth: true)
figsize = [5.0, 3.8]  # size of one panel
dpi = 150

# %%
from implicit_reg.figures.notebook_prelude import Image, P, PM, Path, display, np, pd, plt

# %%
runs = pd.read_parquet(runs_path)
gd = runs.loc[runs["method"] == "deep_factorization"]
if gd.empty:
    raise ValueError(f"no deep_factorization runs in {runs_path}")
for column in (x, y):
    if column not in gd.columns:
        raise KeyError(f"{column!r} is not a column of {runs_path}: {list(gd.columns)}")
gt = runs.loc[runs["method"] == "ground_truth"]
ranks = sorted(int(r) for r in gd["rank"].unique())
depths = sorted(int(d) for d in gd["depth"].unique())
agg = P.mean_std_by(gd, ["rank", "depth", x], y)
published = PM.published_points(published_path, Path(runs_path).parent.name, y)

# %%
fig, axes = plt.subplots(1, len(ranks), figsize=(figsize[0] * len(ranks), figsize[1]), squeeze=False,
                         sharey=True, layout="constrained")
for ax, rank in zip(axes[0], ranks):
    for depth in depths:
        sel = agg.loc[(agg["rank"] == rank) & (agg["depth"] == depth)]
        P.errorbar_series(ax, sel, x, label=f"depth {depth}", **P.depth_style(depth))
    if ground_truth_line and not gt.empty:
        value = pd.to_numeric(gt.loc[gt["rank"] == rank, y], errors="coerce").dropna()
        if len(value):
            ax.axhline(float(value.iloc[0]), label="ground truth", **P.GROUND_TRUTH_STYLE)
    P.mark_failed_runs(ax, gd.loc[gd["rank"] == rank], x, y)
    PM.draw_panel(ax, published, x, None, rank=rank)
    ax.set_xscale("log" if log_x else "linear")
    ax.set_yscale("log" if log_y else "linear")
    ax.set_title(f"rank {rank}")
    ax.set_xlabel(x_label or x)
axes[0, 0].set_ylabel(y_label or y)
axes[0, 0].legend(*P.legend_entries(axes, ("depth", "ground")), loc="best")

P.save_figure(fig, figure_pdf, figure_png, dpi=dpi)
plt.close(fig)
display(Image(filename=figure_png))

# %% [markdown]
# ## Plotted numbers
# Mean ± population std over seeds; a bracket lists the runs that did not converge.

# %%
print(P.pivot_mean_std(agg, ["rank", "depth"], x).to_string())
print()
print(P.failed_runs_report(gd, ["run_id", "rank", "depth", x, "seed", "iterations"]))
