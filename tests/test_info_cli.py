"""vmf-info prints the variant table and JSON; bad names fail cleanly."""

from __future__ import annotations

import json

import pytest

from vmf_deploy.cli.info import main


def test_json_has_required_fields(capsys):
    assert main(["--variant", "560m", "mobile3d-560m", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in rows] == ["560m", "mobile3d-560m"]
    for key in ("variant", "input_shape", "params", "flops", "paper_params", "paper_flops"):
        assert key in rows[0]
    assert rows[0]["input_shape"] == [1, 3, 64, 172, 172]
    assert abs(rows[0]["flops_rel_diff"]) < 0.03
    assert rows[1]["paper_flops"] is None


def test_table(capsys):
    assert main(["--variant", "1g"]) == 0
    out = capsys.readouterr().out
    assert "1g" in out and "4.714M" in out and "1.429" in out


def test_unknown_variant(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--variant", "3g"])
    assert e.value.code == 2
    assert "unknown variant '3g'; valid variants:" in capsys.readouterr().err
