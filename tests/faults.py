"""The fault suite: every test marked `@pytest.mark.fault(category)` is a probe that damages something on
purpose (kills a job, corrupts a checkpoint, fills the disk, starts a second run, plants a pickle, breaks
the config or the corpus, moves the results) and states through the `fault` fixture what it found:

    fault.survived(how)              the system came through, and how the test knows (recorded; required)
    fault.data_lost(count, what)     finished data lost or changed (recorded, then asserted to be 0)
    fault.named(message, *what)      the message names each `what` (a file, a key): recorded, then asserted

A probe survived when its test passed and it said how; a failed test is a probe that did not survive.
With `--fault-report PATH` (`make test-faults`) the session writes PATH, one table per category and the
totals, and fails if any probe did not survive, lost data, failed to name the file or key, or stated no
outcome, or if a category ran no probe. Loaded from tests/conftest.py.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CATEGORIES = {
    "kills": "Kills at several points",
    "corrupt checkpoints": "Corrupt checkpoints, train logs and artefacts",
    "disk full": "Disk full, over quota, read-only",
    "concurrent runs": "Concurrent runs",
    "malicious pickles": "Malicious pickles",
    "bad configs": "Bad configurations",
    "bad corpora": "Bad corpora",
    "relocated results": "Relocated results",
}
"""Every category the suite must cover (issue 27): a run with the report in which one has no probe fails."""


@dataclass
class Probe:
    nodeid: str
    category: str
    name: str
    outcome: str = "not run"  # passed | failed | skipped | not run
    skip_reason: str = ""
    how: str | None = None  # fault.survived
    lost: int | None = None  # fault.data_lost; None: the probe concerns no stored data
    lost_what: list[str] = field(default_factory=list)  # "<count> <what>", one per fault.data_lost
    named: bool | None = None  # fault.named; None: not applicable
    named_what: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def survived(self) -> bool:
        return self.outcome == "passed" and self.how is not None

    @property
    def problems(self) -> list[str]:
        if self.outcome in ("skipped", "not run"):
            return []
        found = []
        if self.outcome != "passed":
            found.append("did not survive (the test failed)")
        elif self.how is None:
            found.append("stated no outcome (fault.survived was never called)")
        if self.lost:
            found.append(f"lost data ({self.lost})")
        if self.named is False:
            found.append("did not name the file or key")
        return found


_PROBES = pytest.StashKey[dict]()  # nodeid -> Probe, for every collected test marked `fault`
_STARTED = pytest.StashKey[float]()
_PROBLEMS = pytest.StashKey[tuple]()  # (report path, the problems that failed the suite)


def probe_name(item: pytest.Item) -> str:
    """The test's name as words, its parameters after it: `damaged newest checkpoint ... [truncate-...]`."""
    base, _, params = item.name.partition("[")
    words = base.removeprefix("test_").replace("_", " ")
    return f"{words} [{params}" if params else words


class FaultRecorder:
    """What the `fault` fixture gives a probe (see the module's docstring)."""

    def __init__(self, probe: Probe) -> None:
        self._probe = probe

    def survived(self, how: str) -> None:
        self._probe.how = how

    def data_lost(self, lost: int | list, what: str) -> None:
        """`lost`: how many, or which (e.g. the names of the tensors unlike the reference's)."""
        count = len(lost) if isinstance(lost, list) else int(lost)
        probe = self._probe
        probe.lost = (probe.lost or 0) + count
        probe.lost_what.append(f"{count} {what}")
        assert count == 0, f"data lost: {count} {what}" + (f": {lost[:20]}" if isinstance(lost, list) else "")

    def named(self, message: str, *what: Any) -> None:
        if not what:
            raise ValueError("fault.named needs the file(s) or key(s) the message must name")
        missing = [str(part) for part in what if str(part) not in message]
        probe = self._probe
        probe.named = probe.named is not False and not missing
        probe.named_what.extend(str(part) for part in what)
        assert not missing, f"the message does not name {missing}:\n{message[-3000:]}"


def differing(reference: dict, actual: dict) -> list[str]:
    """The names of the tensors of `reference` that `actual` lacks or holds different values for, and of any
    tensor `actual` has beside them: what a fault cost a model, against the run the fault never touched."""
    import torch

    changed = [
        name for name, tensor in reference.items() if name not in actual or not torch.equal(actual[name], tensor)
    ]
    return changed + sorted(set(actual) - set(reference))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fault-report",
        metavar="PATH",
        default=None,
        help="write the fault suite's report (tests marked `fault`) to PATH, and fail the session "
        "if any probe did not survive, lost data or did not name the file or key",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.monotonic()
    session.config.stash[_PROBES] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    probes = config.stash[_PROBES]
    for item in items:
        marker = item.get_closest_marker("fault")
        if marker is None:
            continue
        if len(marker.args) != 1 or marker.args[0] not in CATEGORIES:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.fault takes one category of {sorted(CATEGORIES)}, got {marker.args}"
            )
        probes[item.nodeid] = Probe(item.nodeid, marker.args[0], probe_name(item))


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> FaultRecorder:
    probe = request.config.stash[_PROBES].get(request.node.nodeid)
    if probe is None:
        pytest.fail("the `fault` fixture records a probe: mark the test @pytest.mark.fault(<category>)")
    return FaultRecorder(probe)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    probe = item.config.stash[_PROBES].get(item.nodeid)
    if probe is None:
        return
    probe.seconds += report.duration
    if report.failed:
        probe.outcome = "failed"
    elif report.skipped and probe.outcome != "failed":
        probe.outcome = "skipped"
        probe.skip_reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    elif report.when == "call" and report.passed and probe.outcome == "not run":
        probe.outcome = "passed"


def _short(text: str) -> str:
    """An absolute path as its last two parts (the temporary folders' names say nothing), in backticks."""
    shortened = re.sub(r"(?<![\w.])/(?:[^\s/'\"`]+/)+([^\s/'\"`]+/[^\s/'\"`]+)", r"…/\1", text)
    return "`" + shortened.replace("|", "\\|").replace("`", "'").replace("\n", " ") + "`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(probe: Probe) -> str:
    if probe.outcome == "skipped":
        survived = f"skipped: {_cell(probe.skip_reason.removeprefix('Skipped: '))}"
    else:
        survived = "yes" if probe.survived else "**no**"
    lost = (
        "n/a"
        if probe.lost is None
        else ("**" if probe.lost else "") + _cell("; ".join(probe.lost_what)) + ("**" if probe.lost else "")
    )
    if probe.named is None:
        named = "n/a" if probe.outcome != "failed" else "not reached"
    else:
        named = ("yes" if probe.named else "**no**") + ": " + ", ".join(_short(what) for what in probe.named_what)
    how = _cell(probe.how or ("(not stated)" if probe.outcome == "passed" else ""))
    return f"| {_cell(probe.name)} | {survived} | {lost} | {named} | {how} | {probe.seconds:.1f} |"


def write_report(path: Path, probes: list[Probe], wall_s: float) -> list[str]:
    """Write the report; the problems that fail the suite."""
    problems = [f"{probe.nodeid}: {problem}" for probe in probes for problem in probe.problems]
    ran = [probe for probe in probes if probe.outcome in ("passed", "failed")]
    for category in CATEGORIES:
        if not any(probe.category == category for probe in ran):
            problems.append(f"category '{category}' ran no probe")
    skipped = [probe for probe in probes if probe.outcome == "skipped"]
    survived = sum(probe.survived for probe in ran)
    lost = sum(probe.lost or 0 for probe in ran)
    naming = [probe for probe in ran if probe.named is not None]
    lines = [
        "# Fault report",
        "",
        "Written by `make test-faults` (`pytest -m fault --fault-report`; the probes are the tests marked "
        "`fault`, tests/faults.py).",
        "",
        f"**Summary: {len(ran)} probes run, {survived} survived, {len(ran) - survived} did not; "
        f"data lost: {lost}; messages that named the file or key: {sum(bool(p.named) for p in naming)} of "
        f"{len(naming)} ({len(ran) - len(naming)} probes have no message to check); "
        f"{len(skipped)} skipped; {wall_s:.0f} s wall.**",
        "",
        "Survived: the test passed and said how it knows. Data lost: finished data the fault destroyed or "
        "changed, as each probe counts it (n/a: the probe stops before any data is written). Named: the error "
        "or log message names the file or key (paths shortened to their last two parts here).",
    ]
    if problems:
        lines += ["", "## Failures", "", *(f"- {_cell(problem)}" for problem in problems)]
    for category, title in CATEGORIES.items():
        members = [probe for probe in probes if probe.category == category]
        lines += ["", f"## {title}", ""]
        if not members:
            lines.append("No probe.")
            continue
        lines += [
            "| probe | survived | data lost | message named the file/key | how it is known | s |",
            "|---|---|---|---|---|---|",
            *map(_row, members),
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return problems


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = session.config.getoption("--fault-report")
    if target is None or _PROBES not in session.config.stash:
        return
    probes = list(session.config.stash[_PROBES].values())
    problems = write_report(Path(target), probes, time.monotonic() - session.config.stash[_STARTED])
    session.config.stash[_PROBLEMS] = (Path(target), problems)
    if problems and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _PROBLEMS not in config.stash:
        return
    target, problems = config.stash[_PROBLEMS]
    terminalreporter.write_sep("=", f"fault report: {os.path.relpath(target)}")
    for problem in problems:
        terminalreporter.write_line(f"FAULT SUITE: {problem}", red=True)
    if not problems:
        terminalreporter.write_line("every probe survived, lost no data and named the file or key it had to")
