"""The conformance kit as a pytest plugin (entry point `pytest11`: tinyc).

`pytest --tinyc-target NAME` adds the checks of `checks.py` for that target to
the run and ends with a per-op pass/fail table. Without the option the plugin
only defines the fixtures below and does nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

OPTION = "--tinyc-target"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("tinyc").addoption(
        OPTION, metavar="NAME", default=None,
        help="run tinyc's conformance checks (ops, models, intrinsics) against target NAME")


@pytest.fixture
def tinyc_target(request: pytest.FixtureRequest) -> str:
    """The target under test; a backend's own tests override this fixture."""
    name = request.config.getoption(OPTION)
    if name is None:
        pytest.skip(f"no {OPTION} given")
    return name


@pytest.fixture
def tinyc_buildable(tinyc_target: str) -> None:
    """Skip, saying why, when the target cannot be compiled and run here."""
    from tinyc.errors import TargetError
    from tinyc.runtime.devices import runtime_device_for
    from tinyc.target import Packager, resolve_devices

    try:
        host = resolve_devices(tinyc_target).host
        if isinstance(host.backend, Packager):  # a cross target: its emulator must be here
            runtime_device_for(host.spec.backend, tinyc_target)
    except TargetError as e:
        pytest.skip(str(e))


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect, so they apply to the kit too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if config.getoption(OPTION) is None:
        return
    from . import checks

    module = pytest.Module.from_parent(session, path=Path(checks.__file__),
                                       nodeid="tinyc-conformance")
    module.obj = checks  # the installed module, not a second import of it by path
    items[:0] = list(session.genitems(module))


def pytest_itemcollected(item: pytest.Item) -> None:
    """Tag each op or model check with what it checks, for the per-op table; on the item,
    so that a check skipped in setup (target not buildable) is counted too."""
    from .cases import Case

    case = getattr(getattr(item, "callspec", None), "params", {}).get("case")
    if isinstance(case, Case):
        label = case.op if case.op != "model" else f"model {case.name}"
        item.user_properties.append(("tinyc_op", label))


class ConformanceReport:
    """Collects the outcome of every check by target and op and prints them at the end."""

    def __init__(self) -> None:
        self.outcomes: dict[str, dict[str, list[tuple[str, str]]]] = {}  # target -> op -> ...

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        target = getattr(item, "funcargs", {}).get("tinyc_target")
        if target is not None:  # the report travels to the xdist controller with it
            report.user_properties.append(("tinyc_target", target))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        op = props.get("tinyc_op")
        if op is None or (report.when != "call" and report.passed):
            return  # one outcome per check: the call's, or a failed/skipped setup's
        case = report.nodeid.rsplit("[", 1)[-1].rstrip("]")
        target = str(props.get("tinyc_target", "?"))
        self.outcomes.setdefault(target, {}).setdefault(str(op), []).append(
            (case, report.outcome))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for target, by_op in sorted(self.outcomes.items()):
            terminalreporter.section(f"tinyc conformance: {target}")
            for op in sorted(by_op):
                terminalreporter.write_line(_summary_line(op, by_op[op]))


def _summary_line(op: str, outcomes: list[tuple[str, str]]) -> str:
    passed = sum(o == "passed" for _, o in outcomes)
    if passed == len(outcomes):
        status, detail = "pass", ""
    elif all(o == "skipped" for _, o in outcomes):
        status, detail = "skip", ""
    else:
        status = "FAIL"
        detail = "  (" + "; ".join(f"{c} {o}" for c, o in outcomes if o != "passed") + ")"
    return f"{op:<24} {status:<5} {passed}/{len(outcomes)}{detail}"


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ConformanceReport(), "tinyc-conformance-report")
