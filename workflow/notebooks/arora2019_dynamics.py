# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Arora et al. (2019), NeurIPS Figure 3 (completion, ML-100K) / Figure 6 (sensing)
#
# Dynamics of plain gradient descent from identity initialization (spec §2.3,
# §2.4). One row per task; columns 1-3: the top-10 singular values of the
# product matrix vs. iteration for depths 1, 2, 3 (linear axes, colours of the
# `summer` colormap at i/10, the largest dark green); column 4: the
# singular-vector alignment |UᵀGV| of the depth-2 run (spec §1.8, Corollary 1),
# mean of the diagonal (C0) and off-diagonal (C1) entries with ±1 std bands.
# With identity initialization all singular values coincide at t = 0, so the
# first logged alignment value uses an arbitrary basis.

# %% tags=["parameters"]
runs_path = "results/arora2019_fig3/runs.parquet"  # runs table (parquet)
trajectories_path = "results/arora2019_fig3/trajectories.parquet"  # trajectories table (parquet)
figure_pdf = "figures/arora2019_fig3.pdf"
figure_png = "figures/arora2019_fig3.png"
published_path = None  # config/published.yaml (None: the repository's)
published_figure = "arora2019_fig3"  # entries that hold the rows' published values (Fig. 6 has none)
rows = ["completion", "movielens"]  # tasks drawn as rows; tasks absent from the data are skipped; Fig 6 is ["sensing"]
xlims = {  # task to right x-limits of columns depth 1, 2, 3, alignment; None or no entry means automatic
    "completion": [None, 1.5e4, 2e4, 1.5e4],
    "movielens": [2e5, 4e4, 5e4, 4e4],
    "sensing": [None, None, None, None],
}
alignment_depth = 2  # depth of the run shown in the alignment column
lr = None  # learning rate of the plotted runs (a number, or a dict task to number); None takes the largest present
n_half_crossing = 5  # report when each of the top singular values crosses half its final value
dpi = 150

# %%
from implicit_reg.figures.notebook_prelude import Image, P, PM, display, mpl, np, pd, plt

# %%
#: Published values per depth (spec §2.3, §3), read from config/published.yaml: the
#: blog's final squared reconstruction errors of the synthetic row, the notebook's min
#: test MSE of ML-100K.
def published_by_depth(task: str, metric: str) -> dict[int, float]:
    points = PM.published_points(published_path, published_figure, metric)
    return {int(w["depth"]): float(v) for w, v in zip(points["where"], points["published"])
            if w.get("task") == task and isinstance(w.get("depth"), int)}


PUBLISHED = {"completion": published_by_depth("completion", "recon_error_sq"),
             "movielens": published_by_depth("movielens", "test_mse")}
DEPTHS = (1, 2, 3)

xlim_table = {}
for task, value in (xlims or {}).items():
    if value is not None and len(value) != 4:
        raise ValueError(f"xlims[{task!r}] needs 4 entries (depth 1, 2, 3, alignment), got {value}")
    xlim_table[task] = [None] * 4 if value is None else [None if v is None else float(v) for v in value]

runs_all = pd.read_parquet(runs_path)
traj_all = pd.read_parquet(trajectories_path)
runs_all = runs_all.loc[runs_all["method"] == "deep_factorization"]
traj_all = traj_all.loc[traj_all["run_id"].isin(runs_all["run_id"])]
sv_cols = sorted((c for c in traj_all.columns if c.startswith("sv_")), key=lambda c: int(c.split("_")[1]))
if not sv_cols:
    raise ValueError(f"no sv_* columns in {trajectories_path}")
align_cols = ["align_diag_mean", "align_diag_std", "align_offdiag_mean", "align_offdiag_std"]

present = [t for t in rows if t in set(runs_all["task"])]
for t in rows:
    if t not in present:
        print(f"note: row {t!r} skipped: no deep_factorization runs with task={t!r} in {runs_path}")
if not present:
    raise ValueError(f"none of the rows {rows} has runs in {runs_path} (tasks present: "
                     f"{sorted(runs_all['task'].unique())})")


def pick_run(task: str, depth: int) -> pd.Series | None:
    """The run drawn for (task, depth): lr closest to the ``lr`` parameter, then the smallest seed."""
    cand = runs_all.loc[(runs_all["task"] == task) & (runs_all["depth"] == depth)]
    if cand.empty:
        return None
    wanted = lr.get(task) if isinstance(lr, dict) else lr
    lr_used = P.closest_value(cand["lr"], wanted)
    chosen = cand.loc[np.isclose(cand["lr"], lr_used, rtol=1e-6)].sort_values(["seed", "run_id"])
    if len(cand) > 1:
        print(f"note: {task} depth {depth}: {len(cand)} runs present, plotting {chosen.iloc[0]['run_id']} "
              f"(lr={P.format_sci(lr_used)}, seed={chosen.iloc[0]['seed']})")
    return chosen.iloc[0]


def trajectory(run: pd.Series) -> pd.DataFrame:
    return traj_all.loc[traj_all["run_id"] == run["run_id"]].sort_values("iteration").reset_index(drop=True)


def row_label(task: str, n_obs: int) -> str:
    if task == "movielens":
        return "ml-100k"
    name = "synthetic" if task == "completion" else task
    return f"{name}, # = {P.format_count(n_obs)}"


selected = {(t, d): pick_run(t, d) for t in present for d in sorted({*DEPTHS, alignment_depth})}
trajs = {key: trajectory(run) for key, run in selected.items() if run is not None}

def annotate_published(ax, task: str, depth: int, run: pd.Series, tr: pd.DataFrame) -> None:
    """Ours beside the published value of the quantity the scorecard holds for this panel.

    The panels plot singular values, not the error, so the comparison is a label in the
    corner: the final squared error (synthetic) or the minimum test MSE (ML-100K).
    """
    published = PUBLISHED.get(task, {}).get(depth)
    if published is None:
        return
    if task == "movielens":
        name, ours = "min test MSE", float(tr["test_mse"].min()) if "test_mse" in tr else float("nan")
    else:
        name, ours = "final error", float(run["recon_error_sq"])
    ax.text(0.02, 0.97, f"{name}: ours {ours:.3g}\npublished {published:.3g}", transform=ax.transAxes,
            ha="left", va="top", fontsize=8,
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "black", "alpha": 0.9})


# %%
sv_cmap = mpl.colormaps["summer"]
nrows = len(present)
fig, axes = plt.subplots(nrows, 4, figsize=(15, 3.75 * nrows), squeeze=False, layout="constrained")
for i, task in enumerate(present):
    limits = xlim_table.get(task, [None] * 4)
    for j, depth in enumerate(DEPTHS):
        ax = axes[i, j]
        run = selected.get((task, depth))
        if run is None:
            ax.text(0.5, 0.5, f"no depth-{depth} run", transform=ax.transAxes, ha="center", va="center")
            ax.set_title(f"depth {depth}, {task}")
            ax.set_xticks([])
            ax.set_yticks([])
            print(f"note: {task}: no depth-{depth} run, panel left empty")
            continue
        tr = trajs[(task, depth)]
        for k, col in enumerate(sv_cols):
            ax.plot(tr["iteration"], tr[col], color=sv_cmap(k / 10))
        ax.set_title(f"depth {depth}, {row_label(task, int(run['n_obs']))}")
        ax.set_xlabel("steps")
        ax.set_ylabel("singular values")
        annotate_published(ax, task, depth, run, tr)
        if limits[j] is not None:
            ax.set_xlim(0, limits[j])
        # A diverged run is flagged in its panel; hitting the iteration cap is normal for these
        # dynamics runs (spec §2.3: up to 2e5 steps) and is listed in the printout only.
        if run["status"] not in P.OK_STATUSES and run["status"] != "max_iters":
            ax.text(0.98, 0.5, f"{P.STATUS_LABELS.get(run['status'], run['status'])} at step "
                    f"{int(run['iterations'])}", transform=ax.transAxes, ha="right", va="center",
                    color="red", fontsize=8,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "red", "alpha": 0.85})
    ax = axes[i, 3]
    run = selected.get((task, alignment_depth))
    has_alignment = run is not None and set(align_cols) <= set(trajs[(task, alignment_depth)].columns)
    if has_alignment:
        has_alignment = bool(trajs[(task, alignment_depth)]["align_diag_mean"].notna().any())
    if not has_alignment:
        ax.text(0.5, 0.5, f"no depth-{alignment_depth} alignment", transform=ax.transAxes, ha="center",
                va="center")
        ax.set_xticks([])
        ax.set_yticks([])
        print(f"note: {task}: no depth-{alignment_depth} run with logged alignment statistics")
    else:
        tr = trajs[(task, alignment_depth)]
        x = tr["iteration"].to_numpy(dtype=float)
        for part, color, label in (("diag", "C0", "diagonal"), ("offdiag", "C1", "off-diagonal")):
            mean = tr[f"align_{part}_mean"].to_numpy(dtype=float)
            std = tr[f"align_{part}_std"].to_numpy(dtype=float)
            ax.plot(x, mean, color=color, label=label)
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        ax.set_title(f"depth {alignment_depth}, {row_label(task, int(run['n_obs']))}: alignment")
        ax.set_xlabel("steps")
        ax.set_ylabel(r"$|U^\top G V|$ entries")
        ax.legend(loc="upper right")
        if limits[3] is not None:
            ax.set_xlim(0, limits[3])

P.save_figure(fig, figure_pdf, figure_png, dpi=dpi)
plt.close(fig)
display(Image(filename=figure_png))  # the saved PNG (avoids rendering the figure twice)

# %% [markdown]
# ## Plotted numbers
# Synthetic and sensing rows: the final squared reconstruction error
# ‖W−W*‖²_F/‖W*‖²_F (runs table). ML-100K: the minimum test MSE over the
# logged trajectory (as the authors' notebook prints) and the final one.
# `published`: blog (synthetic) and notebook (ML-100K) values, spec §2.3.

# %%
table = []
for task in present:
    for depth in DEPTHS:
        run = selected.get((task, depth))
        if run is None:
            continue
        tr = trajs[(task, depth)]
        row = {"task": task, "depth": depth, "lr": P.format_sci(float(run["lr"])), "n_obs": int(run["n_obs"])}
        if task == "movielens":
            best = int(tr["test_mse"].to_numpy(dtype=float).argmin()) if tr["test_mse"].notna().any() else None
            row["metric"] = "min test_mse"
            row["value"] = float(tr["test_mse"].iloc[best]) if best is not None else float("nan")
            row["at_step"] = int(tr["iteration"].iloc[best]) if best is not None else -1
            row["final"] = float(run["test_mse"])
        else:
            row["metric"] = "recon_error_sq"
            row["value"] = float(run["recon_error_sq"])
            row["at_step"] = int(run["iterations"])
            row["final"] = float(run["test_mse"])
        row["published"] = PUBLISHED.get(task, {}).get(depth, float("nan"))
        row["ratio"] = row["value"] / row["published"] if np.isfinite(row["published"]) else float("nan")
        row["iterations"] = int(run["iterations"])
        row["status"] = run["status"]
        table.append(row)
table = pd.DataFrame(table)
print("final errors (value: plotted-run metric; final: final test_mse; ratio: value / published)")
print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def half_crossing(x: np.ndarray, y: np.ndarray) -> float:
    """First step (linearly interpolated between logged rows) at which y reaches half its final value."""
    target = 0.5 * y[-1]
    hit = np.nonzero(y >= target)[0]
    if hit.size == 0:
        return float("nan")
    k = int(hit[0])
    if k == 0:
        return float(x[0])
    y0, y1 = y[k - 1], y[k]
    frac = (target - y0) / (y1 - y0) if y1 != y0 else 1.0
    return float(x[k - 1] + frac * (x[k] - x[k - 1]))


n_top = min(n_half_crossing, len(sv_cols))
print(f"\nfinal singular values, and the step at which each of the top {n_top} first reaches half its final")
print("value (interpolated between logged rows; '-' for one that did not grow at least 10-fold from its")
print("initial value). Crossings in index order and well apart = the values 'separate one by one'.")
for task in present:
    for depth in DEPTHS:
        if (task, depth) not in trajs:
            continue
        tr = trajs[(task, depth)]
        x = tr["iteration"].to_numpy(dtype=float)
        final = tr[sv_cols].iloc[-1].to_numpy(dtype=float)
        cross = []
        for c in sv_cols[:n_top]:
            y = tr[c].to_numpy(dtype=float)
            cross.append(half_crossing(x, y) if y[-1] >= 10 * y[0] else float("nan"))
        text = ", ".join("-" if not np.isfinite(c) else f"{c:.0f}" for c in cross)
        grown = [c for c in cross if np.isfinite(c)]
        gaps = ", ".join(f"{round(g):+d}" for g in np.diff(grown))
        print(f"{task:>10} depth {depth}: final sv_1..sv_{len(sv_cols)} = [{', '.join(f'{v:.4g}' for v in final)}]")
        print(f"{'':>18} half-crossing steps = [{text}]" + (f"; successive gaps = [{gaps}]" if gaps else ""))

for task in present:
    key = (task, alignment_depth)
    if key in trajs and set(align_cols) <= set(trajs[key].columns) and trajs[key]["align_diag_mean"].notna().any():
        tr = trajs[key]
        k = int(tr["align_diag_mean"].to_numpy(dtype=float).argmax())
        print(f"\nalignment {task} depth {alignment_depth}: diagonal mean peaks at "
              f"{tr['align_diag_mean'].iloc[k]:.3g} (std {tr['align_diag_std'].iloc[k]:.2g}) at step "
              f"{int(tr['iteration'].iloc[k])}; off-diagonal mean there {tr['align_offdiag_mean'].iloc[k]:.3g}, "
              f"max over the run {tr['align_offdiag_mean'].max():.3g}")

print()
shown = pd.DataFrame([r for r in selected.values() if r is not None])
print(P.failed_runs_report(shown, ["run_id", "task", "depth", "lr", "iterations"]))
