"""The archive's command line: ``python -m implicit_reg.pipeline.archive_command {add,verify,list,retime,pack}``.

Here, not beside the archive, because ``add --configfile`` asks the planners which
provenance keys a configuration needs (:func:`implicit_reg.pipeline.planning.config_keys`),
and the planners themselves read the archive::

    python -m implicit_reg.pipeline.archive_command add archive/paper [--results results] [--configfile ...]
    python -m implicit_reg.pipeline.archive_command {list,verify} archive/paper
    python -m implicit_reg.pipeline.archive_command pack archive/paper paper-archive.tar.gz
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from implicit_reg.results.archive import ArchiveError, load_manifest
from implicit_reg.results.archive_admin import add_jobs, pack_archive, retime_resumed, verify
from implicit_reg.pipeline.planning import config_keys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``python -m implicit_reg.pipeline.archive_command {add,verify,list,retime,pack} ...`` (see ``--help``).

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: the command line's).

    Returns
    -------
    int
        The exit status: 1 when ``verify`` finds bad entries, else 0.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m implicit_reg.pipeline.archive_command", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_add = sub.add_parser("add", help="add every finished job under results/ that the archive lacks")
    p_add.add_argument("archive", help="archive directory, e.g. archive/paper")
    p_add.add_argument("--results", default="results", help="results directory (default: results)")
    p_add.add_argument("--benchmarks", default="benchmarks", help="Snakemake benchmark files (job times)")
    p_add.add_argument("--configfile", nargs="+", default=None,
                       help="only jobs this config needs (files merged in order over config/config.yaml)")
    p_verify = sub.add_parser("verify", help="check every entry's sha256 against the manifest")
    p_verify.add_argument("archive")
    p_list = sub.add_parser("list", help="entries, results and sizes")
    p_list.add_argument("archive")
    p_retime = sub.add_parser("retime", help="count resumed jobs' earlier attempts in entries archived before "
                              "job records carried them (from the runs tables' wall_seconds)")
    p_retime.add_argument("archive")
    p_pack = sub.add_parser("pack", help="pack the archive into a .tar.gz and print its sha256")
    p_pack.add_argument("archive")
    p_pack.add_argument("tarball")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ArchiveError as err:  # a damaged manifest: one line naming it, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: Any) -> int:
    from implicit_reg.results.provenance import git_commit, package_versions

    if args.command == "add":
        info = git_commit(".")
        commit = info["commit"] + (" (dirty)" if info.get("dirty") else "")
        wanted = config_keys(args.configfile) if args.configfile else None
        added = add_jobs(args.results, args.archive, commit=commit, versions=package_versions(),
                         benchmarks_dir=args.benchmarks, only_keys=wanted)
        print(f"{len(added)} entries added to {args.archive}")
    elif args.command == "verify":
        bad = verify(args.archive)
        for name in bad:
            print(f"corrupt or missing: {Path(args.archive) / name}")
        print(f"{args.archive}: {'OK' if not bad else f'{len(bad)} bad entries'}")
        return 1 if bad else 0
    elif args.command == "list":
        entries = load_manifest(args.archive)["entries"]
        total = 0
        for name, e in sorted(entries.items()):
            total += e["size"]
            print(f"{e['size'] / 1e6:8.2f} MB  {len(e['keys']):4d} results  {e['kind']:32s} {e['job']}")
        print(f"{len(entries)} entries, {sum(len(e['keys']) for e in entries.values())} results, {total / 1e6:.1f} MB")
    elif args.command == "retime":
        print(f"{len(retime_resumed(args.archive))} entries retimed in {args.archive}")
    elif args.command == "pack":
        print(pack_archive(args.archive, args.tarball))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
