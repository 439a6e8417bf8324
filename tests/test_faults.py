"""The fault suite's recorder and report (tests/faults.py), on probes planted in a pytest run of their own:
the report's rows and totals, and a session that fails when a probe did not survive, lost data, did not
name the file or key, or stated no outcome, or when a category ran no probe."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.faults import CATEGORIES

pytest_plugins = ["pytester"]

PROBES = "\n".join(
    [
        "import pytest",
        *(
            f"""
@pytest.mark.fault({category!r})
def test_good_{index}(fault):
    fault.data_lost(0, "rows unlike the reference's")
    fault.named("cannot write /results/tables/wer.csv: disk full", "/results/tables/wer.csv")
    fault.survived("resumed to the reference")
"""
            for index, category in enumerate(CATEGORIES)
        ),
        """
@pytest.mark.fault("kills")
def test_silent(fault):
    pass


@pytest.mark.fault("bad configs")
def test_unnamed(fault):
    fault.named("invalid configuration", "train.lr")
    fault.survived("refused")


@pytest.mark.fault("disk full")
def test_lossy(fault):
    fault.data_lost(["model.pt"], "finished files deleted")
    fault.survived("not reached")


@pytest.mark.fault("kills")
def test_skipped(fault):
    pytest.skip("needs root")


def test_not_a_probe(fault):
    pass
""",
    ]
)


@pytest.fixture
def probes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makeconftest('pytest_plugins = ["tests.faults"]')
    pytester.makeini("[pytest]\nmarkers =\n    fault(category): a fault probe\n")
    pytester.makepyfile(test_probes=PROBES)
    return pytester


def test_a_suite_of_surviving_probes_passes_and_reports_them(probes: pytest.Pytester) -> None:
    result = probes.runpytest_subprocess("-k", "good or skipped", "--fault-report", "report.md")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    report = (probes.path / "report.md").read_text()
    assert (
        f"**Summary: {len(CATEGORIES)} probes run, {len(CATEGORIES)} survived, 0 did not; data lost: 0; "
        f"messages that named the file or key: {len(CATEGORIES)} of {len(CATEGORIES)}"
    ) in report
    assert "1 skipped" in report and "| skipped | skipped: needs root |" in report
    for title in CATEGORIES.values():
        assert f"\n## {title}\n" in report
    assert (
        "| good 0 | yes | 0 rows unlike the reference's | yes: `…/tables/wer.csv` | resumed to the reference |"
        in report
    )
    assert "## Failures" not in report


def test_a_probe_that_loses_data_names_nothing_or_says_nothing_fails_the_suite(probes: pytest.Pytester) -> None:
    result = probes.runpytest_subprocess("-k", "not not_a_probe", "--fault-report", "report.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = (probes.path / "report.md").read_text()
    assert "data lost: 1;" in report and f"of {len(CATEGORIES) + 1}" in report
    for problem in [
        "test_silent: stated no outcome",
        "test_unnamed: did not survive",
        "test_unnamed: did not name the file or key",
        "test_lossy: lost data (1)",
    ]:
        assert problem in report, problem
    assert "| silent | **no** | n/a | n/a | (not stated) |" in report
    assert "| unnamed | **no** | n/a | **no**: `train.lr` |" in report
    assert "| lossy | **no** | **1 finished files deleted** |" in report
    silent_only = probes.runpytest_subprocess("-k", "good or silent", "--fault-report", "report.md")
    assert silent_only.ret == pytest.ExitCode.TESTS_FAILED, "every test passed; the probe said nothing"
    assert "FAULT SUITE: test_probes.py::test_silent: stated no outcome" in silent_only.stdout.str()


def test_a_category_without_a_probe_fails_the_suite_and_the_fixture_needs_the_marker(probes: pytest.Pytester) -> None:
    result = probes.runpytest_subprocess("-k", "good_0 or not_a_probe", "--fault-report", "report.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = (probes.path / "report.md").read_text()
    for category in list(CATEGORIES)[1:]:
        assert f"category '{category}' ran no probe" in report
    result.stdout.fnmatch_lines(["*mark the test @pytest.mark.fault(<category>)*"])
    (probes.path / "report.md").unlink()
    plain = probes.runpytest_subprocess("-k", "good_0")  # no report asked for (`make test`): no gate, no file
    assert plain.ret == pytest.ExitCode.OK and not (probes.path / "report.md").exists()
