# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Razin & Cohen (2020): tensor completion (Figure 2, rank-3 appendix)
#
# One row per ground truth (order 3 on top, then order 4), two panels per row
# (spec §4): the reconstruction error ‖W − T*‖/‖T*‖ (log scale) and the
# estimated CP rank against the number of observed entries. Series "linear"
# (the observed entries, zeros elsewhere; one tensor per n), "tf, init 1e-2"
# and "tf, init 1e-3" (CP factorizations trained by the adaptive-step gradient
# descent). Markers: medians over repetitions; bars: 25th–75th percentiles
# (alpha 0.6). The red line is the estimated rank of the ground truth. Runs that
# hit the iteration cap or diverged are drawn as hollow red markers.

# %% tags=["parameters"]
runs_path = "results/razin2020_fig2/runs.parquet"
trajectories_path = "results/razin2020_fig2/trajectories.parquet"
summary_path = "results/razin2020_fig2/summary.parquet"
figure_pdf = "figures/razin2020_fig2.pdf"
figure_png = "figures/razin2020_fig2.png"
figure = "razin2020_fig2"
published_path = None  # config/published.yaml: published values drawn as "published" stars
row_size = [6.4, 2.95]  # inches per row (the authors' pairs are 5.63 x 2.95)
dpi = 250

# %%
from implicit_reg.figures.notebook_prelude import Image, P, PM, display, np, pd, plt

# %%
from implicit_reg.razin2020.tables import upgrade_columns  # noqa: E402

# upgrade_columns: tables written before the column convention read like new ones.
runs = upgrade_columns(pd.read_parquet(runs_path))
summary = upgrade_columns(pd.read_parquet(summary_path))
datasets = (runs[["dataset", "order", "rank", "mode_size"]].drop_duplicates()
            .sort_values(["rank", "order", "dataset"]).to_dict("records"))
SERIES_STYLE = {
    "linear": {"color": "tab:blue", "marker": "o", "linestyle": "--"},
    "tf, init 1e-2": {"color": "tab:orange", "marker": "v", "linestyle": "-"},
    "tf, init 1e-3": {"color": "tab:green", "marker": "^", "linestyle": "-."},
}
_extra = iter([{"color": c, "marker": m, "linestyle": ":"} for c, m in
               [("tab:purple", "s"), ("tab:brown", "D"), ("tab:pink", "P"), ("tab:olive", "X")]])
for s in sorted(summary["series"].unique()):
    if s not in SERIES_STYLE:
        SERIES_STYLE[s] = next(_extra)


def title(d: dict) -> str:
    dims = "x".join([str(d["mode_size"])] * int(d["order"]))
    return f"{dims} (order {d['order']}) rank {d['rank']} tensor completion"


# %%
fig = plt.figure(figsize=(row_size[0], row_size[1] * len(datasets)), layout="constrained")
subfigs = np.atleast_1d(fig.subfigures(len(datasets), 1))
for sub, d in zip(subfigs, datasets):
    ax_err, ax_rank = sub.subplots(1, 2)
    s_d = summary.loc[summary["dataset"] == d["dataset"]]
    for series in sorted(s_d["series"].unique()):
        s = s_d.loc[s_d["series"] == series].sort_values("n_obs")
        style = SERIES_STYLE[series]
        for ax, col in ((ax_err, "recon_error"), (ax_rank, "cp_rank")):
            med = s[f"{col}_median"].to_numpy(dtype=float)
            lo = np.clip(med - s[f"{col}_p25"].to_numpy(dtype=float), 0, None)
            hi = np.clip(s[f"{col}_p75"].to_numpy(dtype=float) - med, 0, None)
            ax.plot(s["n_obs"], med, label=series, markersize=5, linewidth=1.4, **style)
            ax.errorbar(s["n_obs"], med, yerr=[np.nan_to_num(lo), np.nan_to_num(hi)], fmt="none",
                        ecolor=style["color"], alpha=0.6, capsize=3, linewidth=1.2)
    truth = runs.loc[(runs["dataset"] == d["dataset"]) & (runs["method"] == "ground_truth"), "cp_rank"]
    if len(truth):
        ax_rank.axhline(float(truth.iloc[0]), color="C3", linewidth=3, label="ground truth", zorder=1)
    tf = runs.loc[(runs["dataset"] == d["dataset"]) & (runs["method"] == "tf")]
    P.mark_failed_runs(ax_err, tf, "n_obs", "recon_error", text_loc=(0.97, 0.97))
    P.mark_failed_runs(ax_rank, tf, "n_obs", "cp_rank", annotate=False)
    for ax, col in ((ax_err, "recon_error_median"), (ax_rank, "cp_rank_median")):
        # A series' median at one n is published on the summary table or as the median of
        # the runs table's rows (the n = 50 values, whose instance spread compares medians of 5).
        runs_medians = PM.published_points(published_path, figure, col.removesuffix("_median"))
        runs_medians = runs_medians.loc[[("series" in w) for w in runs_medians["where"]]]
        points = pd.concat([PM.published_points(published_path, figure, col), runs_medians], ignore_index=True)
        PM.draw_panel(ax, points, "n_obs", order=int(d["order"]))
    ax_err.set_yscale("log")
    ax_err.set_ylabel("reconstruction error")
    ax_rank.set_ylabel("rank")
    top = max(ax_rank.dataLim.y1, 1.0)
    ax_rank.set_ylim(0, 1.08 * top + 0.3)  # room for markers at the top
    for ax in (ax_err, ax_rank):
        ax.set_xlabel("# of observations")
        ax.margins(x=0.03)
    ax_rank.legend(fontsize=7, loc="best", framealpha=0.85)
    sub.suptitle(title(d), fontsize=10)

P.save_figure(fig, figure_pdf, figure_png, dpi=dpi)
plt.close(fig)
display(Image(filename=figure_png))

# %% [markdown]
# ## Plotted numbers
# Medians (25th–75th percentiles) per series and number of observations, the
# ground-truth rank estimates, and the runs that did not converge.

# %%
for d in datasets:
    s = summary.loc[summary["dataset"] == d["dataset"]].copy()
    s["error"] = [f"{m:.3g} [{a:.2g}, {b:.2g}]" for m, a, b in
                  zip(s["recon_error_median"], s["recon_error_p25"], s["recon_error_p75"])]
    s["rank"] = [f"{m:g} [{a:g}, {b:g}]" for m, a, b in
                 zip(s["cp_rank_median"], s["cp_rank_p25"], s["cp_rank_p75"])]
    print(title(d))
    print(s.pivot_table(index="n_obs", columns="series", values=["error", "rank"], aggfunc="first").to_string())
    gt = runs.loc[(runs["dataset"] == d["dataset"]) & (runs["method"] == "ground_truth")]
    print("ground truth rank estimate:", gt["cp_rank"].tolist(), "\n")
tf = runs.loc[runs["method"] == "tf"]
print("iterations per series (min/median/max):")
print(tf.groupby(["dataset", "series"])["iterations"].agg(["min", "median", "max"]).to_string())
print("\ntraining wall seconds per job (sum over jobs):",
      round(float(tf.drop_duplicates(["dataset", "n_obs"])["wall_seconds"].sum()), 1),
      "; rank estimation seconds (sum):", round(float(runs["rank_seconds"].fillna(0).sum()), 1))
print()
print(P.failed_runs_report(tf, ["run_id", "iterations", "final_train_loss"]))
