"""Reference numbers: every committed file loads; a malformed row is reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.core.errors import UsageError
from harness.results.reference import COLUMNS, load_reference, table_values


def test_committed_reference_files_load() -> None:
    values = load_reference()
    tables = {v.table for v in values}
    assert {"table2", "table3", "table4", "table5", "crd"} <= tables
    t5 = {(v.method, v.metric): v.value for v in table_values("table5")}
    assert t5[("gam", "params_millions")] == 149.47 and t5[("baseline", "params")] == 23_705_252


@pytest.mark.parametrize(
    "row, message",
    [
        ("table5,cifar100,resnet50,,se,,top1,abc,last,1,paper", "value 'abc' is not a number"),
        ("table5,cifar100,resnet50,,se,,accuracy,1,last,1,paper", "metric 'accuracy'"),
        ("table5,cifar100,resnet50,,se,,top1,1,first,1,paper", "protocol 'first'"),
        ("table5,cifar100,resnet50,,se,,top1,1,last", "expected 11 fields, found 9"),
        ("table5,cifar100,,,se,,top1,1,last,1,paper", "'arch' is empty"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    (tmp_path / "bad.csv").write_text(f"# comment\n{','.join(COLUMNS)}\n{row}\n")
    with pytest.raises(UsageError, match=f"bad.csv:3: {message}"):
        load_reference(tmp_path)


def test_cost_command_prints_table5_params(capsys) -> None:
    assert (
        main(
            ["cost", "--methods", "baseline,se,cbam", "--arch", "resnet50", "--classes", "100", "--reference", "table5"]
        )
        == 0
    )
    out = capsys.readouterr().out
    for count in ("23,705,252", "26,220,196", "26,237,844"):
        assert count in out
    assert out.count("equal") == 3


def test_reference_resolves_a_file_a_bundled_name_or_a_table_id(tmp_path: Path) -> None:
    from harness.results.reference import resolve

    smoke = resolve("smoke")
    assert smoke == resolve("smoke.csv") == resolve("smoke", table="smoke") and {v.table for v in smoke} == {"smoke"}
    assert {v.table for v in resolve("encodenet_table4")} == {"table4"} == {v.table for v in resolve("table4")}
    own = tmp_path / "mine.csv"
    own.write_text(f"{','.join(COLUMNS)}\nmine,cifar10,resnet8,,baseline,,top1,50,last,1,me\n")
    assert [v.value for v in resolve(str(own))] == [50.0]
    with pytest.raises(UsageError, match="has no rows of table 'table5'"):
        resolve("smoke", table="table5")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("results/reference/smoke.csv", "no such file; the bundled reference is named 'smoke'"),
        ("elsewhere/mine.csv", "no such file, and no bundled reference of that name"),
        ("table9", "no reference table 'table9' in the bundled reference data; known: crd, .*smoke, table2"),
    ],
)
def test_missing_reference_is_an_error_naming_it(spec: str, message: str) -> None:
    from harness.results.reference import resolve

    with pytest.raises(UsageError, match=message):
        resolve(spec)


def test_reproduce_refuses_a_missing_reference_instead_of_dropping_columns(tmp_path, capsys) -> None:
    from harness import studies

    edited = tmp_path / "table5.toml"  # the bundled table, its reference edited away
    edited.write_text(studies.find("table5").read_text().replace('reference = "table5"', 'reference = "gone"'))
    assert main(["reproduce", str(edited), "--no-train"]) == 2
    assert "no reference table 'gone'" in capsys.readouterr().err


def test_cost_takes_its_classes_from_the_dataset_and_keeps_one_unit_per_column(capsys) -> None:
    from harness.run.cost import significant

    assert [significant(x) for x in (12.51, 0.01251, 1304.2, 72.77, 0.078042)] == [
        "12.5",
        "0.0125",
        "1,304",
        "72.8",
        "0.0780",
    ]
    assert main(["cost", "--methods", "baseline", "--arch", "resnet8"]) == 0
    out = capsys.readouterr().out
    assert "resnet8, 10 classes, 3x32x32 input (from cifar10)" in out and "78,042" in out  # bench run's default
    assert "MACs (M)" in out and "(G" not in out and "12.5" in out
    assert main(["cost", "--methods", "baseline", "--arch", "resnet8", "--dataset", "cifar100"]) == 0
    out = capsys.readouterr().out
    assert "100 classes" in out and "83,892" in out  # the CIFAR-100 ResNet-8 of the reference implementation
