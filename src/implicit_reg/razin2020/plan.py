"""Job plan of the Razin & Cohen (2020) figures: job specs, seeds and file paths.

:class:`RazinPlan` implements :class:`implicit_reg.pipeline.planning.FigurePlanner`, the planner
interface the workflow uses for both papers; its paths are under the ``results_dir``
the workflow passes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from implicit_reg.razin2020.provenance import RazinProvenance

# --------------------------------------------------------------------------
# Job plan (used by workflow/rules/razin2020.smk; pure functions of the config)
# --------------------------------------------------------------------------

#: Figures drawn from 2×2 runs and from tensor completion runs.
DMF_FIGURES = ("razin2020_fig1", "razin2020_perturbed")
TC_FIGURES = ("razin2020_fig2", "razin2020_rank3")
EXTENSIONS = {"matrix": "json", "tensor": "npz"}
KIND_DIRS = {"matrix": "dmf", "tensor": "tc"}


@dataclass(frozen=True)
class RazinJob:
    """One Razin & Cohen job of the plan: its rule, job name, provenance key and where it is."""

    rule: str
    job: str
    key: str
    #: the figures that read it
    figures: list[str]
    #: "archive" or "local" when a finished result is found; None: to compute
    origin: str | None = None


class RazinPlan(RazinProvenance):
    """Job specs, seeds and file paths of the Razin & Cohen figures.

    ``section`` is ``config["razin2020"]`` after schema validation (defaults
    filled), ``base_seed`` the config's ``seed``. Every seed is
    ``derive_seed(base_seed, "razin2020", ...)`` of what it draws, so it does
    not depend on the order of jobs or on other figures.
    """

    paper = "razin2020"

    def __init__(self, section: Mapping[str, Any], base_seed: int, instances: int = 0,
                 results_dir: str = "results") -> None:
        self.cfg = section
        #: where the workflow's jobs write (every path of the plan is under it)
        self.results = str(results_dir)
        self.seed = int(base_seed)
        #: K of the instance spread (config ``instances``): spread panels run seeds 0..K
        self.instances = int(instances)
        self.figures = section.get("figures", {})
        self.datasets = section["data"]["datasets"]

    # ---- figures and checks --------------------------------------------

    def figure_names(self) -> list[str]:
        """Enabled figures, sorted."""
        return sorted(n for n, f in self.figures.items() if f.get("enabled", True))

    def figure_regex(self, kind: str) -> str:
        """Wildcard constraint matching this config's figures of ``kind`` (dmf or tc)."""
        names = [n for n in (DMF_FIGURES if kind == "dmf" else TC_FIGURES) if n in self.figures]
        return "|".join(names) if names else "(?!)"

    def problems(self) -> list[str]:
        """Configuration problems the schema cannot express (empty: fine)."""
        out = []
        for figure, fig in self.figures.items():
            kind = "matrix" if figure in DMF_FIGURES else "tensor"
            names = fig["datasets"] if kind == "matrix" else [d["name"] for d in fig["datasets"]]
            for name in names:
                entry = self.datasets.get(name)
                if entry is None:
                    out.append(f"{figure}: data set {name!r} is not in razin2020.data.datasets")
                elif entry["kind"] != kind:
                    out.append(f"{figure}: data set {name!r} is a {entry['kind']}, not a {kind}")
            if kind == "tensor":
                spreads = [(d["name"], d["variant"], n) for d in self.tc_spread_items(figure) for n in d["n_obs"]]
                twice = sorted({s for s in spreads if spreads.count(s) > 1})
                if twice:
                    out.append(f"{figure}.instance_datasets: {twice[0][0]} at n = {twice[0][2]} is in two "
                               "items of one variant")
            if kind == "matrix":
                depths = [p["depth"] for p in fig["panels"]]
                if len(set(depths)) != len(depths):
                    out.append(f"{figure}: two panels with the same depth ({depths})")
        for name, entry in self.datasets.items():
            needed = ["observed"] if entry["kind"] == "matrix" else ["order", "rank"]
            out += [f"razin2020.data.datasets.{name}: key {k!r} missing" for k in needed if k not in entry]
        return out

    # ---- data ------------------------------------------------------------

    def data_path(self, name: str) -> str:
        return f"{self.results}/razin2020/data/{name}.{EXTENSIONS[self.datasets[name]['kind']]}"

    def dataset_input(self, name: str) -> dict[str, str]:
        """The file a data set is copied from (nothing for generated instances)."""
        data, entry = self.cfg["data"], self.datasets[name]
        rel = f"{KIND_DIRS[entry['kind']]}/{name}.{EXTENSIONS[entry['kind']]}"
        if data["source"] == "generated":
            return {}
        if data["source"] == "download":
            return {"source": f"{data['download']['dir']}/{rel}"}
        return {"source": f"{data['data_dir']}/{rel}"}

    def dataset_params(self, name: str) -> dict[str, Any]:
        from implicit_reg.core.seeding import derive_seed

        return {"name": name, "source": self.cfg["data"]["source"],
                "seed": derive_seed(self.seed, "razin2020", "data", name), **self.datasets[name]}

    def download_url(self, kind: str, name: str) -> str:
        dl = self.cfg["data"]["download"]
        return dl["url"].format(commit=dl["commit"], kind=kind, name=name)

    # ---- 2×2 runs --------------------------------------------------------

    def spread_figures(self) -> list[str]:
        """2×2 figures with an instance spread (``instance_panels`` and ``instances`` > 0)."""
        return sorted(n for n in self.figure_names()
                      if self.instances and self.figures[n].get("instance_panels"))

    def spread_depths(self, figure: str) -> list[int]:
        return [int(p["depth"]) for p in self.figures[figure].get("instance_panels", [])]

    def dmf_spec(self, figure: str, depth: int | str, spread: bool = False) -> dict[str, Any]:
        """Every run of one panel (one job): data sets × panel runs × repetitions, with seeds.

        With ``spread``, the panel of ``instance_panels`` with repetitions 0..K: the seed of
        repetition r is the one a figure with r + 1 repetitions gives, so repetition 0 is the
        figure's own run and the others are further seeds.
        """
        from implicit_reg.core.seeding import derive_seed

        fig, depth = self.figures[figure], int(depth)
        panels = fig["instance_panels"] if spread else fig["panels"]
        panel = next(p for p in panels if int(p["depth"]) == depth)
        repetitions = self.instances + 1 if spread else int(fig["repetitions"])
        prefix = f"{figure}/instances" if spread else figure
        runs = []
        for name in fig["datasets"]:
            for index, run in enumerate(panel["runs"]):
                for rep in range(repetitions):
                    runs.append({
                        "run_id": f"{prefix}/{name}/depth{depth}/run{index}/rep{rep}",
                        "dataset": name, "depth": depth, "run_index": index, "rep": rep,
                        "lr": float(run["lr"]), "init_product_std": float(run["init_product_std"]),
                        "init": run["init"], "det_sign": int(run["det_sign"]),
                        "seed": derive_seed(self.seed, "razin2020", figure, name, depth, index, rep),
                    })
        return {"figure": figure, "depth": depth, "runs": runs, **self.cfg["dmf"]}

    def dmf_problems(self, figure: str) -> list[str]:
        return [self.data_path(n) for n in self.figures[figure]["datasets"]]

    def dmf_batches(self, figure: str, table: str) -> list[str]:
        return [self.sourced(f"{self.results}/razin2020/dmf/{figure}/depth{p['depth']}/{table}", "dmf",
                             figure=figure, depth=p["depth"])
                for p in self.figures[figure]["panels"]]

    def spread_batches(self, figure: str, table: str) -> list[str]:
        """The instance-spread panels' tables (own outputs or archive entries)."""
        return [self.sourced(f"{self.results}/razin2020/dmf_spread/{figure}/depth{d}/{table}", "dmf_spread",
                             figure=figure, depth=d)
                for d in self.spread_depths(figure)]

    # ---- tensor completion ---------------------------------------------

    def tc_spread_items(self, figure: str) -> list[dict[str, Any]]:
        """The figure's ``instance_datasets``, each resolved to one named spread.

        Returns
        -------
        list of dict
            ``name``, ``n_obs`` (ints), ``observed`` (``fixed``: every instance observes
            the first n entries of the authors' stored permutation and only the
            initialization varies, the documented protocol, spec §9.7; ``redrawn``: each
            instance observes its own seeded permutation), ``variant`` (its name in the
            spread tables: ``protocol`` for the fixed set unless named), ``instances``
            (K: instances 0..K, default the top-level ``instances``) and ``init_stds``.
        """
        fig, out = self.figures[figure], []
        for d in fig.get("instance_datasets", []):
            observed = d.get("observed", "fixed")
            default_variant = "protocol" if observed == "fixed" else "redrawn_observed"
            out.append({"name": d["name"], "n_obs": [int(n) for n in d["n_obs"]], "observed": observed,
                        "variant": d.get("variant") or default_variant,
                        # instances: 0 (top level) switches every spread off, as a preset's switch
                        "instances": int(d.get("instances", self.instances)) if self.instances else 0,
                        "init_stds": [float(s) for s in (d.get("init_stds") or fig.get("instance_init_stds")
                                                         or fig["init_stds"])]})
        return out

    def _spread_item(self, figure: str, name: str, variant: str | None, n_obs: int | None = None) -> dict[str, Any]:
        items = [d for d in self.tc_spread_items(figure)
                 if d["name"] == name and (variant is None or d["variant"] == variant)
                 and (n_obs is None or int(n_obs) in d["n_obs"])]
        if not items:
            raise KeyError(f"{figure}: no instance spread of {name!r} named {variant!r}")
        return items[0]

    def tc_spec(self, figure: str, name: str, n_obs: int | str, instance: int | str | None = None,
                variant: str | None = None) -> dict[str, Any]:
        """The trained runs of one (figure, data set, n): inits × repetitions, with seeds.

        With ``instance`` i (the instance spread ``variant``; None: the first spread of
        ``name``), the spread's init stds and seeds that include i for i > 0. On the fixed
        observed set (the protocol) only the seeds change; on a redrawn one, instance
        i > 0 also gets a ``permutation_seed``: the observed entries are the first n of a
        seeded permutation. Instance 0 has the figure's own seeds and observed set.
        """
        from implicit_reg.core.seeding import derive_seed

        fig, n = self.figures[figure], int(n_obs)
        spread = instance is not None
        i = int(instance) if spread else 0
        item = self._spread_item(figure, name, variant, n) if spread else None
        fixed = spread and item["observed"] == "fixed"
        init_stds = item["init_stds"] if spread else fig["init_stds"]
        if not spread:
            prefix = figure
        else:  # the redrawn spread keeps the run ids (and keys) its archived jobs have
            prefix = f"{figure}/instances/{item['variant']}/i{i}" if fixed else f"{figure}/instances/i{i}"
        tags = ((("instance", i),) if i else ()) + ((("observed", "fixed"),) if fixed and i else ())
        runs = []
        for init_std in init_stds:
            for rep in range(int(fig["repetitions"])):
                key = ("razin2020", "tc", name, n, float(init_std), rep) + tags
                runs.append({
                    "run_id": f"{prefix}/{name}/n{n}/tf-{float(init_std):g}/rep{rep}",
                    "init_std": float(init_std), "rep": rep,
                    "seed": derive_seed(self.seed, *key),
                    "rank_seed": derive_seed(self.seed, "cp_rank", *key),
                })
        spec = {"figure": figure, "dataset": {"name": name, **self.datasets[name]}, "n_obs": n,
                "runs": runs, "tc": dict(self.cfg["tc"]), "cp_rank": dict(self.cfg["cp_rank"])}
        if spread:
            spec["instance"] = i
            if fixed:
                spec["observed"] = "fixed"
            elif i:
                spec["permutation_seed"] = derive_seed(self.seed, "razin2020", "observed", name, ("instance", i))
        return spec

    def tc_spread_figures(self) -> list[str]:
        """Tensor figures with an instance spread (``instance_datasets`` or ``instance_linear`` with K > 0)."""
        return sorted(n for n in self.figure_names()
                      if any(d["instances"] for d in self.tc_spread_items(n))
                      or any(j["instance"] for j in self.linear_spread_jobs(n)))

    def tc_spread_jobs(self, figure: str) -> list[dict[str, Any]]:
        """Every job of a tensor figure's spreads: ``name``, ``n_obs``, ``variant``, ``instance``."""
        return [{"name": d["name"], "n_obs": n, "variant": d["variant"], "instance": i}
                for d in self.tc_spread_items(figure) if d["instances"]
                for n in d["n_obs"] for i in range(d["instances"] + 1)]

    def tc_spread_inputs(self, figure: str) -> dict[str, list[str]]:
        """Every instance's runs and trajectories of a tensor figure's spreads."""
        runs, traj = [], []
        for j in self.tc_spread_jobs(figure):
            local = (f"{self.results}/razin2020/tc_spread/{figure}/{j['variant']}/{j['name']}"
                     f"/n{j['n_obs']}/i{j['instance']}")
            args = dict(figure=figure, name=j["name"], n_obs=j["n_obs"], depth=j["instance"], variant=j["variant"])
            runs.append(self.sourced(f"{local}/runs.parquet", "tc_spread", **args))
            traj.append(self.sourced(f"{local}/trajectories.parquet", "tc_spread", **args))
        linear = [self.sourced(self.linear_spread_path(j["name"], j["n_obs"], j["instance"]), "tc_reference",
                               name=j["name"], n_obs=j["n_obs"], depth=j["instance"])
                  for j in self.linear_spread_jobs(figure)]
        return {"runs": runs, "trajectories": traj, "linear": linear}

    def linear_spread_instances(self, figure: str) -> list[int]:
        """The instance of each linear input of :meth:`tc_spread_inputs`, in its order."""
        return [j["instance"] for j in self.linear_spread_jobs(figure)]

    def tc_spread_variants(self, figure: str) -> list[str]:
        """The spread (variant) name of each job of :meth:`tc_spread_inputs`, in its order."""
        return [j["variant"] for j in self.tc_spread_jobs(figure)]

    def reference_spec(self, name: str, n_obs: int | str | None = None, instance: int | str = 0) -> dict[str, Any]:
        """CP-rank job of the linear tensor at ``n_obs`` or, with None, of the ground truth.

        With ``instance`` i > 0, the same tensor's rank estimated with another ALS seed
        (the estimate is stochastic, spec §9.9): the linear baseline's instance spread.
        """
        from implicit_reg.core.seeding import derive_seed

        n, i = (-1 if n_obs is None else int(n_obs)), int(instance)
        what = "linear" if n > 0 else "ground_truth"
        tags = (("instance", i),) if i else ()
        spec = {"dataset": {"name": name, **self.datasets[name]}, "n_obs": n,
                "rank_seed": derive_seed(self.seed, "razin2020", "cp_rank", name, what, n, *tags),
                "cp_rank": dict(self.cfg["cp_rank"])}
        if i:
            spec["instance"] = i
        return spec

    def linear_spread_jobs(self, figure: str) -> list[dict[str, Any]]:
        """The linear baseline's rank-seed spread (``instance_linear``): ``name``, ``n_obs``, ``instance``.

        Instance 0 is the figure's own estimate (the same job); instances 1..K re-estimate
        the same linear tensor with further ALS seeds.
        """
        if not self.instances:  # the top-level switch: no spread at all
            return []
        return [{"name": d["name"], "n_obs": int(n), "instance": i}
                for d in self.figures[figure].get("instance_linear", [])
                for n in d["n_obs"] for i in range(int(d.get("instances", self.instances)) + 1)]

    def linear_spread_path(self, name: str, n_obs: int | str, instance: int | str) -> str:
        """Where a linear-rank job of the spread writes (instance 0: the figure's own job)."""
        suffix = f"-i{int(instance)}" if int(instance) else ""
        return f"{self.results}/razin2020/tc_reference/{name}/linear-n{int(n_obs)}{suffix}.parquet"

    def tc_table_inputs(self, figure: str) -> dict[str, list[str]]:
        train_runs, train_traj, linear, truth = [], [], [], []
        for d in self.figures[figure]["datasets"]:
            truth.append(self.reference_input(d["name"]))
            for n in d["n_obs"]:
                local = f"{self.results}/razin2020/tc_train/{figure}/{d['name']}/n{int(n)}"
                train_runs.append(self.sourced(f"{local}/runs.parquet", "tc_train", figure, d["name"], n_obs=n))
                train_traj.append(self.sourced(f"{local}/trajectories.parquet", "tc_train", figure, d["name"], n_obs=n))
                linear.append(self.sourced(f"{self.results}/razin2020/tc_reference/{d['name']}/linear-n{int(n)}.parquet",
                                           "tc_reference", name=d["name"], n_obs=n))
        return {"train_runs": train_runs, "train_trajectories": train_traj, "linear": linear, "ground_truth": truth}

    def reference_input(self, name: str) -> str:
        """The ground truth's CP-rank row (its own job's output or an archive entry)."""
        return self.sourced(f"{self.results}/razin2020/tc_reference/{name}/ground_truth.parquet", "tc_reference", name=name)

    # ---- the planner interface (implicit_reg.pipeline.planning.FigurePlanner) ----

    def figure_notebook(self, figure: str) -> str:
        """Stem of the notebook that draws ``figure``."""
        return self.figures[figure]["notebook"]

    def figure_tables(self, figure: str) -> dict[str, str]:
        """The tables the figure's notebook reads: runs, trajectories, and markers (2×2) or summary (tensor)."""
        extra = "markers" if figure in DMF_FIGURES else "summary"
        return {name: f"{self.results}/{figure}/{name}.parquet" for name in ("runs", "trajectories", extra)}

    def figure_notebook_params(self, figure: str) -> dict[str, Any]:
        """The figure's name (the notebooks label their panels by it), then its config ``notebook_params``."""
        return {"figure": figure, **self.figures[figure].get("notebook_params", {})}

    def figure_jobs(self, figure: str) -> list[RazinJob]:
        """Every job ``figure`` reads (instance spread included), whether computed or not."""
        fig, jobs = self.figures[figure], []
        if figure in DMF_FIGURES:
            jobs += [self._plan_job("razin2020_dmf_batch", "dmf", figure=figure, depth=p["depth"])
                     for p in fig["panels"]]
            if figure in self.spread_figures():
                jobs += [self._plan_job("razin2020_dmf_spread_batch", "dmf_spread", figure=figure, depth=d)
                         for d in self.spread_depths(figure)]
            return jobs
        for d in fig["datasets"]:
            jobs.append(self._plan_job("razin2020_tc_ground_truth", "tc_reference", name=d["name"]))
            for n in d["n_obs"]:
                jobs.append(self._plan_job("razin2020_tc_train", "tc_train", figure=figure, name=d["name"], n_obs=n))
                jobs.append(self._plan_job("razin2020_tc_linear", "tc_reference", name=d["name"], n_obs=n))
        jobs += [self._plan_job("razin2020_tc_spread_train", "tc_spread", figure=figure, name=j["name"],
                                n_obs=j["n_obs"], depth=j["instance"], variant=j["variant"])
                 for j in self.tc_spread_jobs(figure)]
        jobs += [self._plan_job("razin2020_tc_linear_spread", "tc_reference", name=j["name"], n_obs=j["n_obs"],
                                depth=j["instance"])
                 for j in self.linear_spread_jobs(figure) if j["instance"]]
        return jobs

    def _plan_job(self, rule: str, kind: str, **args: Any) -> RazinJob:
        prov = self.job_provenance(kind, **args)
        origin = None
        if self.store is not None:
            use_archive = not self.recompute.intersection(prov["figures"])
            source = self.store.find(prov["key"], use_archive=use_archive, local_first=False)
            origin = source.origin if source is not None else None
        return RazinJob(rule, prov["job"], prov["key"], prov["figures"], origin)

    def planned_jobs(self) -> list[RazinJob]:
        """Every job of the enabled figures, once (jobs shared by figures are listed once)."""
        jobs: dict[str, RazinJob] = {}
        for figure in self.figure_names():
            for job in self.figure_jobs(figure):
                jobs.setdefault(job.key, job)
        return sorted(jobs.values(), key=lambda j: (j.rule, j.job))

    def jobs_for_figure(self, figure: str) -> list[str]:
        """The jobs ``figure`` reads that neither ``results/`` nor the archive holds."""
        return sorted({j.job for j in self.figure_jobs(figure) if j.origin is None})

    def missing_jobs(self, limit: int = 20) -> list[str]:
        """One line per job to compute, at most ``limit``."""
        lines = [f"to run: {j.rule} {j.job} ({', '.join(j.figures)})" for j in self.planned_jobs() if j.origin is None]
        if len(lines) > limit:
            lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
        return lines

    def summary(self) -> str:
        """One line for the log: how many jobs are restored, found and to compute."""
        jobs = self.planned_jobs()
        count = {origin: sum(j.origin == origin for j in jobs) for origin in ("archive", "local", None)}
        return (f"razin2020: {len(jobs)} jobs: {count['archive']} restored from the archive, "
                f"{count['local']} already in {self.results}/, {count[None]} to run")
