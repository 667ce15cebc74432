"""Reference numbers: every committed file loads; a malformed row is reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run.cli import main
from harness.core.errors import UsageError
from harness.results.reference import COLUMNS, load_reference, table_values


def test_committed_reference_files_load() -> None:
    values = load_reference()
    tables = {v.table for v in values}
    assert {"table2", "table3", "table4", "table5", "crd"} <= tables
    t5 = {(v.method, v.metric): v.value for v in table_values("table5")}
    assert t5[("gam", "params_millions")] == 149.47 and t5[("baseline", "params")] == 23_705_252


@pytest.mark.parametrize("row, message", [
    ("table5,cifar100,resnet50,,se,,top1,abc,last,1,paper", "value 'abc' is not a number"),
    ("table5,cifar100,resnet50,,se,,accuracy,1,last,1,paper", "metric 'accuracy'"),
    ("table5,cifar100,resnet50,,se,,top1,1,first,1,paper", "protocol 'first'"),
    ("table5,cifar100,resnet50,,se,,top1,1,last", "expected 11 fields, found 9"),
    ("table5,cifar100,,,se,,top1,1,last,1,paper", "'arch' is empty"),
])
def test_malformed_row_names_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    (tmp_path / "bad.csv").write_text(f"# comment\n{','.join(COLUMNS)}\n{row}\n")
    with pytest.raises(UsageError, match=f"bad.csv:3: {message}"):
        load_reference(tmp_path)


def test_cost_command_prints_table5_params(capsys) -> None:
    assert main(["cost", "--methods", "baseline,se,cbam", "--arch", "resnet50", "--classes", "100",
                 "--reference", "table5"]) == 0
    out = capsys.readouterr().out
    for count in ("23,705,252", "26,220,196", "26,237,844"):
        assert count in out
    assert out.count("equal") == 3
