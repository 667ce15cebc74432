"""A reference table of two sources with two top-1 protocols (the CRD table: RepDistiller's last-epoch rows,
mdistiller's best-epoch DKD rows) keeps them apart: a check compares each row with its own protocol only, and a
reproduced table marks the rows of the other protocol."""

from __future__ import annotations

import pytest

from harness.core.errors import UsageError
from harness.results.check import check_metric, protocol_rows
from harness.results.reference import table_values
from harness.run.reproduce import TableSpec, protocol_text, reported_text


def test_the_crd_table_holds_mdistillers_dkd_rows_at_the_best_epoch() -> None:
    crd = table_values("crd")
    dkd = {(v.arch, v.teacher): v for v in crd if v.method == "dkd"}
    assert {k: v.value for k, v in dkd.items()} == {
        ("resnet20", "resnet56"): 71.97,
        ("resnet32", "resnet110"): 74.11,
        ("resnet8x4", "resnet32x4"): 76.32,
        ("vgg8", "vgg13"): 74.68,
    }
    assert {v.protocol for v in dkd.values()} == {"best"} and {v.source for v in dkd.values()} == {"mdistiller README"}
    assert all(v.where.startswith("crd_dkd.csv:") for v in dkd.values())  # their own file
    assert {v.protocol for v in crd if v.method != "dkd" and v.metric == "top1"} == {"last"}


def test_a_check_of_a_mixed_table_takes_one_protocol_at_a_time() -> None:
    crd = table_values("crd")
    assert check_metric(crd, None) == "last" and check_metric(crd, "best") == "best"
    last, left = protocol_rows(crd, "last")
    assert {v.method for v in left} == {"dkd"} and all(v.protocol == "last" for v in last if v.metric == "top1")
    best, left = protocol_rows(crd, "best")
    assert {v.method for v in best if v.metric == "top1"} == {"dkd"} and "dkd" not in {v.method for v in left}
    table4 = table_values("table4")  # one protocol: the other is still refused
    with pytest.raises(UsageError, match="was measured at the best epoch"):
        check_metric(table4, "last")


def test_a_reproduced_table_marks_the_rows_of_the_other_protocol() -> None:
    crd = table_values("crd")
    spec = TableSpec("crd", "CRD", ())
    dkd = next(v for v in crd if v.method == "dkd")
    kd = next(v for v in crd if v.method == "kd")
    assert reported_text(dkd, "last") == f"{dkd.value:.2f} (best ep.)"
    assert reported_text(kd, "last") == f"{kd.value:.2f}"
    assert reported_text(dkd, "best") == f"{dkd.value:.2f}"
    assert "reported values marked (best ep.) are best-epoch numbers" in protocol_text(spec, "last", crd)


def test_an_option_added_since_the_reference_at_its_default_is_the_references_setup() -> None:
    from harness.cli.commands.check import option_defaults
    from harness.results.check import Settings, added_options

    settings = Settings(option_defaults=option_defaults)
    reference = {"method": {"name": "kd", "options": {"ce_weight": 0.1, "kd_weight": 0.9, "temperature": 4.0}}}
    now = {
        "method": {
            "name": "kd",
            "options": {
                "ce_weight": 0.1,
                "kd_weight": 0.9,
                "temperature": 4.0,
                "logit_std": False,
                "ls_temperature": 2.0,
                "ls_weight": 9.0,
            },
        }
    }
    assert added_options(reference, now, settings) == ["logit_std", "ls_temperature", "ls_weight"]
    now["method"]["options"]["logit_std"] = True  # not the default: another experiment than the reference's
    assert added_options(reference, now, settings) == ["ls_temperature", "ls_weight"]
    assert added_options(reference, now, Settings()) == []  # without the registry every new option differs
    assert option_defaults("no-such-method") == {}
