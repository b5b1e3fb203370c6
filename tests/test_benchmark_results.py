"""The benchmarks' results files, which the book's appendix shows: each has its fields, each script writes one."""

from __future__ import annotations

import datetime
import json
import sys

import pytest
from conftest import ROOT

BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import record  # noqa: E402

SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name != "record.py")


def check_fields(data: dict) -> None:
    assert set(record.FIELDS) <= set(data), sorted(set(record.FIELDS) - set(data))
    datetime.datetime.fromisoformat(data["date"])
    assert {"system", "arch", "cpu", "cores"} <= set(data["machine"]) and data["machine"]["cpu"]
    assert data["torch"][0].isdigit() and data["python"][0].isdigit()
    assert isinstance(data["threads"], int) and data["threads"] >= 1
    assert all(isinstance(c["pass"], bool) and c["check"] for c in data["checks"])
    assert data["passed"] == (all(c["pass"] for c in data["checks"]) if data["checks"] else None)
    assert data["report"], "a results file without the report it summarises"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_benchmark_records_its_results(script):
    assert f'record.run("{script.stem}", main)' in script.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sorted((BENCHMARKS / "results").glob("*.json")), ids=lambda p: p.stem)
def test_results_files_have_their_fields(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    check_fields(data)
    assert data["benchmark"] == path.stem and (BENCHMARKS / f"{path.stem}.py").exists()


def test_record_writes_the_checks_a_script_prints(tmp_path):
    def main():
        print("encode   ratio 1.20  (target <= 1.5)  PASS")
        print("train    ratio 1.70  (target <= 1.5)  FAIL")
        print("ALL PASS")

    data = json.loads(record.run("demo", main, folder=tmp_path).read_text())
    check_fields(data)
    assert [c["pass"] for c in data["checks"]] == [True, False] and data["passed"] is False
    assert data["checks"][0]["check"] == "encode   ratio 1.20  (target <= 1.5)"
