"""Provenance keys and archive lookups of the Razin & Cohen jobs.

Each Razin & Cohen job (a panel of 2×2 runs, a tensor-completion job, a CP-rank job)
is one archivable result. Its key hashes the job's resolved spec without the settings
that change no number (checkpoint interval, numba or Python backend, device), the
identity of every data set it reads (the configured sha256 of the authors' files, or
the seed of a generated instance) and the numerics versions of its engines.
:class:`RazinProvenance` is mixed into :class:`~implicit_reg.razin2020.plan.RazinPlan`.
"""

from __future__ import annotations

from typing import Any, Iterable

from implicit_reg.results import archive

#: spec entries that do not change a job's numbers
_NOT_NUMERICS = ("checkpoint_every", "backend", "device")

_ENGINES = {
    "dmf": ("two_by_two",),
    "dmf_spread": ("two_by_two",),
    "tc_train": ("tensor_completion", "cp_rank"),
    "tc_spread": ("tensor_completion", "cp_rank"),
    "tc_reference": ("cp_rank",),
}
_KINDS = {"dmf": "razin2020.two_by_two", "dmf_spread": "razin2020.two_by_two", "tc_train": "razin2020.tensor_completion",
          "tc_spread": "razin2020.tensor_completion",
          "tc_reference": "razin2020.cp_rank"}


#: Current spec field -> the name it had when the archived jobs were keyed. Keys hash
#: the legacy field names so archived jobs stay valid: renaming a field must not change
#: the provenance key of a job whose numbers it does not change.
_LEGACY_FIELDS = {"init_product_std": "init_scale"}


def _strip(spec: Any) -> Any:
    """The spec as hashed: without the settings in ``_NOT_NUMERICS``, fields under their legacy names."""
    if isinstance(spec, dict):
        return {_LEGACY_FIELDS.get(k, k): _strip(v) for k, v in spec.items() if k not in _NOT_NUMERICS}
    if isinstance(spec, list):
        return [_strip(v) for v in spec]
    return spec


class RazinProvenance:
    """Keys, job names and sources of the Razin & Cohen jobs (needs the RazinPlan methods)."""

    store: "archive.ResultStore | None" = None
    recompute: frozenset[str] = frozenset()

    def attach_store(self, store: "archive.ResultStore | None", recompute: Iterable[str] = ()) -> None:
        """Read finished jobs from ``store``; never restore the figures in ``recompute`` from the archive.

        Parameters
        ----------
        store : archive.ResultStore or None
            Where finished jobs are looked up (None: compute everything).
        recompute : iterable of str
            Figures whose jobs are not restored from the archive.
        """
        self.store = store
        self.recompute = frozenset(recompute)

    def _job(self, kind: str, figure: str | None, name: str | None, depth: Any = None,
             n_obs: Any = None, variant: str | None = None) -> tuple[str, dict[str, Any], list[str]]:
        """(job name, payload, data sets read) of one job."""
        if kind in ("dmf", "dmf_spread"):
            spec = self.dmf_spec(figure, depth, spread=kind == "dmf_spread")
            datasets = list(self.figures[figure]["datasets"])
            job = f"{figure}/{'instances/' if kind == 'dmf_spread' else ''}depth{int(depth)}"
        elif kind == "tc_train":
            spec = self.tc_spec(figure, name, n_obs)
            datasets, job = [name], f"{figure}/{name}/n{int(n_obs)}"
        elif kind == "tc_spread":  # depth carries the instance index
            spec = self.tc_spec(figure, name, n_obs, instance=depth, variant=variant)
            # the redrawn spread keeps the job names its archived entries have
            fixed = spec.get("observed") == "fixed"
            where = f"{self._spread_item(figure, name, variant, n_obs)['variant']}/" if fixed else ""
            datasets, job = [name], f"{figure}/instances/{where}{name}/n{int(n_obs)}/i{int(depth)}"
        elif kind == "tc_reference":  # depth: the instance of a linear-rank spread (0: the figure's)
            spec = self.reference_spec(name, n_obs, instance=depth or 0)
            datasets = [name]
            job = f"{name}/ground_truth" if n_obs is None else f"{name}/linear-n{int(n_obs)}"
            job += f"/i{int(depth)}" if depth else ""
        else:
            raise KeyError(f"unknown Razin & Cohen job kind {kind!r}")
        payload = {"kind": _KINDS[kind], "spec": _strip(spec),
                   "data": {d: self.data_identity(d) for d in datasets},
                   "numerics": archive.numerics(*_ENGINES[kind])}
        return job, payload, datasets

    def data_identity(self, name: str) -> dict[str, Any]:
        """What determines a data set's values, as hashed into the keys of the jobs reading it.

        Parameters
        ----------
        name : str
            A configured data set.

        Returns
        -------
        dict
            The data set's parameters with ``generated`` (bool): for the authors'
            files their configured sha256 (drawn by nobody, so without a seed), for
            a generated instance its seed.
        """
        params = dict(self.dataset_params(name))
        params["generated"] = params.pop("source") == "generated"
        if not params["generated"]:
            params.pop("seed")  # the authors' files are not drawn
        return params

    def job_provenance(self, kind: str, figure: str | None = None, name: str | None = None,
                       depth: Any = None, n_obs: Any = None, variant: str | None = None) -> dict[str, Any]:
        """What a job writes into its record: kind, job name, provenance key and the figures it serves.

        The key is :func:`archive.provenance_key` of the job's resolved spec (without
        the settings that change no number, fields under their legacy names), the
        identity of every data set it reads and the numerics versions of its engines.

        Parameters
        ----------
        kind : str
            ``dmf``, ``dmf_spread``, ``tc_train``, ``tc_spread`` or ``tc_reference``.
        figure, name : str or None
            The figure (2×2 and training jobs) and data set (tensor jobs).
        depth : int or None
            The panel's depth (2×2 jobs); the instance index for ``tc_spread``.
        n_obs : int or None
            Observed entries (tensor jobs; None for a ground-truth reference).

        Returns
        -------
        dict
            ``kind`` (the archive kind), ``job``, ``key`` (64 hex digits) and ``figures``.
        """
        job, payload, datasets = self._job(kind, figure, name, depth, n_obs, variant)
        figures = [figure] if figure else self._figures_reading(datasets[0])
        return {"kind": _KINDS[kind], "job": job, "key": archive.provenance_key(payload), "figures": figures}

    def _figures_reading(self, name: str) -> list[str]:
        out = []
        for figure, fig in self.figures.items():
            names = [d if isinstance(d, str) else d["name"] for d in fig["datasets"]]
            if name in names:
                out.append(figure)
        return sorted(out)

    def sourced(self, local: str, kind: str, figure: str | None = None, name: str | None = None,
                depth: Any = None, n_obs: Any = None, variant: str | None = None) -> str:
        """Where a job's table is read from: ``local`` or the archive entry holding the job.

        Parameters
        ----------
        local : str
            The job's own output path (computed when missing).
        kind, figure, name, depth, n_obs
            As in :meth:`job_provenance`.

        Returns
        -------
        str
            ``local``, or the archive entry's table path when the archive holds the
            job and its figures are not in ``recompute``.
        """
        if self.store is None:
            return local
        prov = self.job_provenance(kind, figure, name, depth, n_obs, variant)
        use_archive = not self.recompute.intersection(prov["figures"])
        source = self.store.find(prov["key"], use_archive=use_archive, local_first=False)
        if source is not None and source.origin == "archive":
            return archive.entry_table_path(source, "*")
        return local

    def all_job_keys(self) -> set[str]:
        """The provenance key of every job the enabled figures need (spread jobs included).

        Returns
        -------
        set of str
        """
        keys = set()
        for figure in self.figure_names():
            fig = self.figures[figure]
            if "panels" in fig:
                keys |= {self.job_provenance("dmf", figure=figure, depth=p["depth"])["key"] for p in fig["panels"]}
                if self.instances:
                    keys |= {self.job_provenance("dmf_spread", figure=figure, depth=p["depth"])["key"]
                             for p in fig.get("instance_panels", [])}
                continue
            for d in fig["datasets"]:
                keys.add(self.job_provenance("tc_reference", name=d["name"])["key"])
                for n in d["n_obs"]:
                    keys.add(self.job_provenance("tc_train", figure=figure, name=d["name"], n_obs=n)["key"])
                    keys.add(self.job_provenance("tc_reference", name=d["name"], n_obs=n)["key"])
            keys |= {self.job_provenance("tc_spread", figure=figure, name=j["name"], n_obs=j["n_obs"],
                                         depth=j["instance"], variant=j["variant"])["key"]
                     for j in self.tc_spread_jobs(figure)}
            keys |= {self.job_provenance("tc_reference", name=j["name"], n_obs=j["n_obs"], depth=j["instance"])["key"]
                     for j in self.linear_spread_jobs(figure)}
        return keys
