# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Arora et al. (2019), Theorem 3 checked on the logged trajectories (beyond the paper)
#
# Theorem 3: under gradient flow on a depth-N factorization from a balanced
# initialization (identity init is balanced), each singular value of the product
# moves at
#
#     dσ_r/dt = −N · (σ_r²)^{1−1/N} · ⟨∇ℓ(W), u_r v_rᵀ⟩,
#
# so with learning rate η one GD step changes σ_r by about
# −η·N·(σ_r²)^{1−1/N}·⟨∇ℓ(W), u_r v_rᵀ⟩ (depth 1: −η·⟨∇ℓ, u_r v_rᵀ⟩, the
# first-order perturbation of a singular value, exact up to O(η²)).
#
# *Measured* rate: finite difference of `sv_r` between consecutive logged rows
# divided by the iteration gap. *Predicted* rate: the formula at both rows,
# averaged (midpoint rule), with ⟨∇ℓ, u_r v_rᵀ⟩ from the logged `grad_proj_r`.
# Singular values are not differentiable where they coincide; with identity
# initialization all are equal at t = 0, so intervals with an end where σ_r is
# within `degenerate_tol` of a neighbour are excluded (counted in the printout).
#
# Panels: one column per depth, two rows per task. Top: log-log |predicted|
# vs |measured| with the y = x line, coloured by singular-value index (the
# colours of Figure 3); filled: σ_r increasing; hollow: decreasing (both rates
# negative); red ×: measured and predicted of opposite sign; grey: |predicted|
# below `rel_threshold` of the run's maximum (drawn, not in the median).
# Bottom: measured / predicted against the step (middle of the interval), for
# the points in the median; the y range holds 98% of them.

# %% tags=["parameters"]
runs_path = "results/arora2019_fig3/runs.parquet"  # runs table (parquet)
trajectories_path = "results/arora2019_fig3/trajectories.parquet"  # trajectories table (parquet)
figure_pdf = "figures/arora2019_singular_value_rates.pdf"
figure_png = "figures/arora2019_singular_value_rates.png"
alignment_scale = {  # task to the factor s in G (spec §1.8); None takes n_obs/2 from the runs table
    "completion": 0.5,
    "movielens": 0.05,
    "sensing": None,
}
grad_proj_scaled = "auto"  # True if grad_proj holds ⟨G, u vᵀ⟩, False if ⟨∇ℓ, u vᵀ⟩, "auto" decides per task
degenerate_tol = 1e-6  # intervals where σ_r is this close to a neighbouring logged σ are excluded
rel_threshold = 0.01  # points with |predicted| below this fraction of the run's maximum stay out of the median
tasks = None  # tasks to check; None takes every task present
dpi = 150

# %%
from implicit_reg.figures.notebook_prelude import Image, Line2D, P, display, mpl, np, pd, plt

# %%
runs_all = pd.read_parquet(runs_path)
traj_all = pd.read_parquet(trajectories_path)
runs_all = runs_all.loc[runs_all["method"] == "deep_factorization"]
if tasks is not None:
    runs_all = runs_all.loc[runs_all["task"].isin(list(tasks))]
k = 0
while f"sv_{k + 1}" in traj_all.columns and f"grad_proj_{k + 1}" in traj_all.columns:
    k += 1
if k == 0:
    raise ValueError(f"{trajectories_path} has no sv_r/grad_proj_r column pairs (log_alignment off?)")
sv_cols = [f"sv_{r}" for r in range(1, k + 1)]
gp_cols = [f"grad_proj_{r}" for r in range(1, k + 1)]
not_gd = runs_all.loc[runs_all["optimizer"] != "gd"]
if len(not_gd):
    print(f"note: {len(not_gd)} runs with an adaptive optimizer skipped (the check needs a constant step): "
          f"{sorted(not_gd['run_id'])[:5]}")
runs_all = runs_all.loc[runs_all["optimizer"] == "gd"]
if runs_all.empty:
    raise ValueError(f"no plain-GD deep_factorization runs to check in {runs_path}")


def scale_of(run: pd.Series) -> float:
    """The factor s of G = s·∇ℓ logged for this run's task (spec §1.8)."""
    value = alignment_scale.get(run["task"]) if alignment_scale else None
    return float(run["n_obs"]) / 2 if value is None else float(value)


def intervals(run: pd.Series) -> pd.DataFrame:
    """One row per (consecutive pair of logged rows, singular-value index).

    ``pred_raw`` takes grad_proj as ⟨∇ℓ, u vᵀ⟩; divide by ``scale`` if it holds ⟨G, u vᵀ⟩.
    """
    tr = traj_all.loc[traj_all["run_id"] == run["run_id"]].sort_values("iteration")
    it = tr["iteration"].to_numpy(dtype=float)
    sv = tr[sv_cols].to_numpy(dtype=float)
    gp = tr[gp_cols].to_numpy(dtype=float)
    depth, eta = int(run["depth"]), float(run["lr"])
    rate = -eta * depth * np.power(sv**2, 1.0 - 1.0 / depth) * gp  # per row, with grad_proj as ⟨∇ℓ, u vᵀ⟩
    gaps = np.abs(np.diff(sv, axis=1))
    degenerate = np.zeros_like(sv, dtype=bool)
    degenerate[:, 1:] |= gaps <= degenerate_tol
    degenerate[:, :-1] |= gaps <= degenerate_tol
    dt = np.diff(it)
    good = dt > 0
    it0, it1, dt = it[:-1][good], it[1:][good], dt[good]
    measured = (np.diff(sv, axis=0)[good]) / dt[:, None]
    predicted = 0.5 * (rate[1:] + rate[:-1])[good]
    excluded = (degenerate[1:] | degenerate[:-1])[good]
    n_int = len(dt)
    return pd.DataFrame({
        "run_id": run["run_id"], "task": run["task"], "depth": depth, "lr": eta, "scale": scale_of(run),
        "r": np.tile(np.arange(1, k + 1), n_int),
        "step": np.repeat(it0, k), "step_end": np.repeat(it1, k),
        "sv": 0.5 * (sv[:-1] + sv[1:])[good].ravel(),
        "measured": measured.ravel(), "pred_raw": predicted.ravel(), "degenerate": excluded.ravel(),
    })


pts = pd.concat([intervals(run) for _, run in runs_all.iterrows()], ignore_index=True)
pts = pts.loc[np.isfinite(pts["measured"]) & np.isfinite(pts["pred_raw"])].reset_index(drop=True)


def usable(df: pd.DataFrame, pred: pd.Series) -> pd.Series:
    """Not degenerate and |predicted| above rel_threshold of its run's maximum."""
    ok = ~df["degenerate"]
    peak = pred.abs().where(ok).groupby(df["run_id"]).transform("max")
    return ok & (pred.abs() > rel_threshold * peak)


# %% [markdown]
# ## Which gradient does `grad_proj` hold?
# The logged `grad_proj_r` is either ⟨∇ℓ, u_r v_rᵀ⟩ or ⟨G, u_r v_rᵀ⟩ with
# G = s·∇ℓ the authors' rescaled gradient of the alignment panel (s =
# `alignment_scale`). Depth 1 decides it: there the formula is exact to first
# order in η, so median(measured / predicted) is 1 under the right reading and
# s (or 1/s) under the wrong one.

# %%
convention = {}
for task, grp in pts.groupby("task", sort=True):
    ref = grp.loc[grp["depth"] == 1] if (grp["depth"] == 1).any() else grp
    use = usable(ref, ref["pred_raw"])
    ratio = float(np.median(ref.loc[use, "measured"] / ref.loc[use, "pred_raw"])) if use.any() else float("nan")
    s = float(ref["scale"].median())
    basis = "depth-1 runs" if (grp["depth"] == 1).any() else "all depths (no depth-1 run)"
    if grad_proj_scaled == "auto":
        if not np.isfinite(ratio) or ratio <= 0:
            scaled = True
            why = "undecidable, taking the brief's reading (scaled)"
        else:
            scaled = abs(np.log(ratio * s)) < abs(np.log(ratio)) if s != 1 else False
            why = "auto"
    else:
        scaled = bool(grad_proj_scaled)
        why = "parameter"
    convention[task] = scaled
    print(f"{task}: median measured/predicted on {basis} = {ratio:.4g} reading grad_proj as ⟨∇ℓ, u vᵀ⟩, "
          f"{ratio * s:.4g} reading it as ⟨G, u vᵀ⟩ with s = {s:g}; using "
          f"{'⟨G, u vᵀ⟩ / s' if scaled else '⟨∇ℓ, u vᵀ⟩'} ({why})")

pts["predicted"] = np.where(pts["task"].map(convention), pts["pred_raw"] / pts["scale"], pts["pred_raw"])
pts["used"] = usable(pts, pts["predicted"])
pts["rel_err"] = (pts["measured"] - pts["predicted"]).abs() / pts["predicted"].abs()
pts["sign_mismatch"] = np.sign(pts["measured"]) != np.sign(pts["predicted"])

# %%
panel_keys = sorted({(t, int(d)) for t, d in zip(pts["task"], pts["depth"])})
task_list = sorted({t for t, _ in panel_keys}, key=lambda t: ["completion", "movielens", "sensing"].index(t)
                   if t in ("completion", "movielens", "sensing") else 99)
depth_list = sorted({d for _, d in panel_keys})
sv_cmap = mpl.colormaps["summer"]
n_rows, n_cols = 2 * len(task_list), len(depth_list)
fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols + 1.6, 6.6 * len(task_list)), squeeze=False,
                         layout="constrained", gridspec_kw={"height_ratios": [4.0, 2.6] * len(task_list)})
label = {"completion": "synthetic", "movielens": "ml-100k", "sensing": "sensing"}
for i, task in enumerate(task_list):
    n_obs = int(runs_all.loc[runs_all["task"] == task, "n_obs"].iloc[0])
    where = label.get(task, task) + ("" if task == "movielens" else f", # = {P.format_count(n_obs)}")
    for j, depth in enumerate(depth_list):
        ax, ax_ratio = axes[2 * i, j], axes[2 * i + 1, j]
        d = pts.loc[(pts["task"] == task) & (pts["depth"] == depth) & ~pts["degenerate"]]
        if d.empty:
            ax.set_visible(False)
            ax_ratio.set_visible(False)
            continue
        # scatter of |measured| vs |predicted|
        x, y = d["predicted"].abs(), d["measured"].abs()
        low = ~d["used"]
        ax.scatter(x[low], y[low], s=5, color="0.75", zorder=1, linewidths=0)
        for r in range(1, k + 1):
            sel = d["used"] & (d["r"] == r) & ~d["sign_mismatch"]
            up = sel & (d["predicted"] > 0)
            down = sel & (d["predicted"] < 0)
            color = sv_cmap((r - 1) / 10)
            ax.scatter(x[up], y[up], s=12, color=color, zorder=2, linewidths=0)
            ax.scatter(x[down], y[down], s=14, facecolors="none", edgecolors=[color], zorder=2, linewidths=0.8)
        bad = d["used"] & d["sign_mismatch"]
        ax.scatter(x[bad], y[bad], s=18, marker="x", color="red", zorder=3, linewidths=1)
        pos = np.concatenate([x[x > 0], y[y > 0]])
        lo, hi = (pos.min(), pos.max()) if pos.size else (1e-8, 1.0)
        lo = max(lo, hi * 1e-9)
        lims = (lo / 1.5, hi * 1.5)
        ax.plot(lims, lims, "k--", linewidth=1, zorder=1.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lims)
        ax.set_ylim(lims)
        ax.set_aspect("equal")
        for axis in (ax.xaxis, ax.yaxis):  # one tick per 1-3 decades, no minor ticks (fast to render)
            axis.set_major_locator(mpl.ticker.LogLocator(numticks=7))
            axis.set_minor_locator(mpl.ticker.NullLocator())
        med = float(d.loc[d["used"], "rel_err"].median()) if d["used"].any() else float("nan")
        ax.set_title(f"depth {depth}, {where}\nmedian rel. error {med:.2g}", fontsize=10)
        ax.set_xlabel(r"predicted $|\eta N(\sigma_r^2)^{1-1/N}\langle\nabla\ell, u_r v_r^\top\rangle|$ per step",
                      fontsize=9)
        if j == 0:
            ax.set_ylabel(r"measured $|\Delta\sigma_r\,/\,\Delta\mathrm{steps}|$")
        # measured / predicted along the run (points in the median only)
        used = d.loc[d["used"]]
        ratio = used["measured"] / used["predicted"]
        mid = 0.5 * (used["step"] + used["step_end"])
        for r in range(1, k + 1):
            sel = (used["r"] == r).to_numpy()
            ax_ratio.scatter(mid[sel], ratio[sel], s=6, color=sv_cmap((r - 1) / 10), linewidths=0)
        ax_ratio.axhline(1.0, color="k", linestyle="--", linewidth=1, zorder=1.5)
        if len(ratio):
            spread = max(0.02, float(np.quantile(np.abs(ratio - 1), 0.98)) * 1.2)
            ax_ratio.set_ylim(1 - spread, 1 + spread)
        ax_ratio.set_xlabel("steps")
        if j == 0:
            ax_ratio.set_ylabel("measured / predicted")
        outside = int(((ratio - 1).abs() > (ax_ratio.get_ylim()[1] - 1)).sum())
        if outside:
            ax_ratio.text(0.98, 0.04, f"{outside} outside", transform=ax_ratio.transAxes, ha="right",
                          va="bottom", fontsize=8, color="0.3")
handles = [Line2D([], [], marker="o", linestyle="none", color=sv_cmap((r - 1) / 10), label=fr"$\sigma_{{{r}}}$")
           for r in range(1, k + 1)]
handles += [
    Line2D([], [], marker="o", linestyle="none", markerfacecolor="none", markeredgecolor="0.3", label="decreasing"),
    Line2D([], [], marker="x", linestyle="none", color="red", label="opposite signs"),
    Line2D([], [], marker="o", linestyle="none", color="0.75", markersize=4,
           label=f"|pred.| < {rel_threshold:g}·max"),
    Line2D([], [], linestyle="--", color="k", label="y = x"),
]
fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)

P.save_figure(fig, figure_pdf, figure_png, dpi=dpi)
plt.close(fig)
display(Image(filename=figure_png))  # the saved PNG (avoids rendering the figure twice)

# %% [markdown]
# ## Plotted numbers
# Per (task, depth): logged intervals × singular values, how many were
# excluded at coinciding singular values (identity init: all σ_r equal at t = 0;
# later exact crossings too), how many are below the threshold, the median and
# 90th percentile of |measured − predicted| / |predicted| over the rest, and how
# many of those have opposite signs.

# %%
rows = []
for (task, depth), d in pts.groupby(["task", "depth"], sort=True):
    used = d.loc[d["used"]]
    first_step = d.groupby("run_id")["step"].transform("min")
    rows.append({
        "task": task, "depth": int(depth), "runs": d["run_id"].nunique(),
        "lr": ", ".join(P.format_sci(v) for v in sorted(d["lr"].unique())),
        "points": len(d), "degenerate": int(d["degenerate"].sum()),
        "degenerate_at_start": int((d["degenerate"] & (d["step"] == first_step)).sum()),
        "below_threshold": int((~d["degenerate"] & ~d["used"]).sum()),
        "used": len(used),
        "median_rel_err": float(used["rel_err"].median()) if len(used) else float("nan"),
        "p90_rel_err": float(used["rel_err"].quantile(0.9)) if len(used) else float("nan"),
        "opposite_sign": int(used["sign_mismatch"].sum()),
    })
summary = pd.DataFrame(rows)
print(f"singular values checked: sv_1..sv_{k}; degenerate_tol {degenerate_tol:g}; threshold {rel_threshold:g} of "
      f"each run's max |predicted|")
print(summary.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
print(f"excluded: {int(summary['degenerate'].sum())} (interval, r) points where σ_r is within {degenerate_tol:g} of a "
      f"neighbouring σ at either end, {int(summary['degenerate_at_start'].sum())} of them in the first interval "
      "of a run (identity init: all σ equal at t = 0, singular values not differentiable there)")

print("\nmedian relative error per index r (rows: task, depth):")
by_r = pts.loc[pts["used"]].pivot_table(index=["task", "depth"], columns="r", values="rel_err", aggfunc="median")
print(by_r.to_string(float_format=lambda v: f"{v:.3g}"))

print()
for _, row in summary.iterrows():
    print(f"rate check: task={row['task']} depth={row['depth']} median_rel_err={row['median_rel_err']:.4g} "
          f"used={row['used']}")
for depth, d in pts.loc[pts["used"]].groupby("depth"):
    print(f"rate check: depth={int(depth)} (all tasks) median_rel_err={float(d['rel_err'].median()):.4g} "
          f"used={len(d)}")
