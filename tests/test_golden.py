"""The golden fixtures' index: each fixture in tests/golden/ loads (its header complete, its generation script
present in scripts/golden/), and each generation script there makes exactly one fixture, whose command runs it
and writes that fixture. The values themselves are checked by the methods' tests (test_distillers, test_crd,
test_fsp_ab, test_dkd)."""

from __future__ import annotations

from golden import GOLDEN, ROOT, SCRIPTS, load


def test_every_fixture_names_its_script_and_every_script_its_fixture() -> None:
    fixtures = sorted(p.stem for p in GOLDEN.glob("*.json"))
    scripts = sorted(p.stem for p in SCRIPTS.glob("*.py") if not p.name.startswith("_"))
    assert fixtures and fixtures == scripts
    for name in fixtures:
        header = load(name).header
        assert header["script"] == (SCRIPTS / f"{name}.py").relative_to(ROOT).as_posix()
        assert f"python {header['script']} " in header["command"]
        assert header["command"].endswith(f"--out tests/golden/{name}.json")
