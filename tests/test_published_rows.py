"""Rows of published values judged together: which variant reproduces all of them at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from implicit_reg.scorecard.published import PublishedSpecError, load_published, parse_entries, resolve_tolerances
from implicit_reg.scorecard.rows import load_rows, parse_rows, reproducing_variants, row_sentence, row_table
from implicit_reg.scorecard.tolerance import parse_readings

ROOT = Path(__file__).resolve().parents[1]
READINGS = parse_readings({"accuracy_px": 2, "plots": {"lin": {"scale": "linear", "px_per_unit": 20},
                                                       "fine": {"scale": "linear", "px_per_unit": 1000}}})


def _entries():
    raw = [{"id": f"v{i}", "paper": "arora2019", "figure": "arora2019_n2", "metric": m, "reduce": "first",
            "published": p, "source": "nb", "reading": {"kind": "linear_axis", "plot": plot},
            "where": {"method": "min_nuclear_norm"}, "description": "d"}
           for i, (m, p, plot) in enumerate([("nuclear_norm", 210.0, "lin"), ("recon_error_sq", 0.1, "fine")])]
    return resolve_tolerances(parse_entries(raw), READINGS)


def _spread_table(tmp_path: Path) -> Path:
    rows = []
    for i in range(11):
        # protocol: nuclear norms ~216 and errors ~0.05 (both published values outside);
        # variant a: ~210 and ~0.1 (both inside); variant b: ~210 but errors ~0.02 (one inside)
        for variant, nn, err in (("protocol", 216.0, 0.05), ("a", 210.0, 0.1), ("b", 210.0, 0.02)):
            rows.append({"method": "min_nuclear_norm", "instance": i, "variant": variant,
                         "nuclear_norm": nn + 0.3 * (i - 5), "recon_error_sq": err * (1 + 0.05 * (i - 5))})
    path = tmp_path / "arora2019_n2"
    path.mkdir()
    pd.DataFrame(rows).to_parquet(path / "instances.parquet")
    return tmp_path


def test_a_variant_reproduces_a_row_only_when_every_value_is_inside(tmp_path):
    entries = _entries()
    (row,) = parse_rows({"rows": [{"id": "r", "description": "row", "entries": ["v0", "v1"]}]}, ["v0", "v1"])
    table = row_table([row], entries, _spread_table(tmp_path))
    inside = table.groupby("variant")["inside"].all().to_dict()
    assert inside == {"protocol": False, "a": True, "b": False}
    assert list(table["variant"].unique()) == ["protocol", "a", "b"]
    assert (table["instances"] == 11).all()
    assert reproducing_variants(row, table) == ["a"]
    text = row_sentence(row, table)
    assert "variant \\texttt{a} reproduces all of them" in text
    assert "\\texttt{b}: 1 of 2 inside, outside: v1 0.1 at percentile 100" in text
    # too few instances never count
    assert not row_table([row], entries, tmp_path, min_instances=12)["inside"].any()


def test_rows_are_validated():
    with pytest.raises(PublishedSpecError, match="unknown entry id 'zz'"):
        parse_rows({"rows": [{"id": "r", "description": "d", "entries": ["v0", "zz"]}]}, ["v0"])
    with pytest.raises(PublishedSpecError, match="at least two"):
        parse_rows({"rows": [{"id": "r", "description": "d", "entries": ["v0"]}]}, ["v0"])
    assert parse_rows([{"id": "v0"}], ["v0"]) == []


def test_the_repo_rows_name_the_n2_quantities():
    entries = load_published(ROOT / "config" / "published.yaml", resolve=False)
    rows = {r.id: r for r in load_rows(ROOT / "config" / "published.yaml", entries)}
    assert {"n2_2k_cvx_error", "n2_2k_cvx_nuclear_norm", "n2_2k_depth2_error_init1e-6",
            "n2_2k_depth2_nuclear_norm_init1e-6"} <= set(rows["n2_2k"].entries)
    assert "n2_5k_cvx_nuclear_norm" in rows["n2_5k"].entries
    data = yaml.safe_load((ROOT / "config" / "published.yaml").read_text(encoding="utf-8"))
    assert len(data["entries"]) == 148
    assert np.all([isinstance(r.description, str) and r.description for r in rows.values()])


def test_an_informative_variant_never_explains_a_value():
    from implicit_reg.scorecard.published import load_informative_variants
    from implicit_reg.scorecard.spread import Spread
    from implicit_reg.scorecard.tolerance import Tolerance
    from implicit_reg.scorecard.verdict import decide

    spread = Spread(statistics={"protocol": np.linspace(1.0, 2.0, 11), "redrawn_observed": np.linspace(0.0, 0.3, 11)})
    tol = Tolerance("factor", 1.07)
    assert decide(0.13, 1.4, tol, spread).verdict == "disagrees_explained"
    v = decide(0.13, 1.4, tol, spread, informative={"redrawn_observed": "not the protocol"})
    assert v.verdict == "disagrees_unexplained" and "not an explanation: not the protocol" in v.evidence
    assert "redrawn_observed" in load_informative_variants(ROOT / "config" / "published.yaml")
