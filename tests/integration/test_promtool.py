"""The generated rules and the Alertmanager config against the real promtool / amtool.

Renders the rules with the default settings next to copies of tests/promtool/*.yml
(whose rule_files name ``callpulse.rules.yml``) and runs ``promtool test rules``.
Missing binaries fail the tests (never skip): install Debian's ``prometheus`` and
``prometheus-alertmanager`` packages (scripts/setup-test-deps.sh).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from metrics.export.rules import render_rules

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL_TESTS = sorted((ROOT / "tests" / "promtool").glob("*.yml"))
ALERTMANAGER_YML = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RULES_NAME = "callpulse.rules.yml"


def _binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found on PATH: install the Debian package '{package}' "
            f"(apt-get install -y --no-install-recommends {package}), "
            "e.g. with scripts/setup-test-deps.sh",
            pytrace=False,
        )
    return path


def _promtool() -> str:
    return _binary("promtool", "prometheus")


def _amtool() -> str:
    return _binary("amtool", "prometheus-alertmanager")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"{' '.join(proc.args)}\n{proc.stdout}\n{proc.stderr}"


def test_check_rules(tmp_path: Path) -> None:
    promtool = _promtool()
    path = tmp_path / RULES_NAME
    path.write_text(render_rules(), encoding="utf-8")
    proc = _run(promtool, "check", "rules", str(path))
    _ok(proc)
    assert "SUCCESS" in proc.stdout


def test_there_are_promtool_tests() -> None:
    assert {p.name for p in PROMTOOL_TESTS} >= {"kpi_alerts.yml", "slo_burn.yml", "pipeline.yml"}


@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(tmp_path: Path, test_file: Path) -> None:
    promtool = _promtool()
    (tmp_path / RULES_NAME).write_text(render_rules(), encoding="utf-8")
    shutil.copy(test_file, tmp_path / test_file.name)
    proc = _run(promtool, "test", "rules", test_file.name, cwd=tmp_path)
    _ok(proc)
    assert "SUCCESS" in proc.stdout and "FAILED" not in proc.stdout


def test_promtool_unit_tests_of_the_rules_rendered_for_the_default_config(tmp_path: Path) -> None:
    """What `callpulse alerts render` writes for the shipped defaults (burn factors fitted to
    the 0.80 target): pages for reachable burns only (tests/promtool/default_config)."""
    from pipeline.cli.alerts import render_for_config
    from pipeline.core.config import Config

    promtool = _promtool()
    (tmp_path / RULES_NAME).write_text(render_for_config(Config()), encoding="utf-8")
    test_file = ROOT / "tests" / "promtool" / "default_config" / "slo_burn.yml"
    shutil.copy(test_file, tmp_path / test_file.name)
    proc = _run(promtool, "test", "rules", test_file.name, cwd=tmp_path)
    _ok(proc)
    assert "SUCCESS" in proc.stdout and "FAILED" not in proc.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A wrong expectation must fail, so the passing runs above mean something."""
    promtool = _promtool()
    (tmp_path / RULES_NAME).write_text(render_rules(), encoding="utf-8")
    text = (ROOT / "tests" / "promtool" / "kpi_alerts.yml").read_text(encoding="utf-8")
    broken = text.replace("over the last 15m is 60%", "over the last 15m is 61%")
    assert broken != text
    (tmp_path / "broken.yml").write_text(broken, encoding="utf-8")
    proc = _run(promtool, "test", "rules", "broken.yml", cwd=tmp_path)
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr


def test_amtool_check_config() -> None:
    amtool = _amtool()
    proc = _run(amtool, "check-config", str(ALERTMANAGER_YML))
    _ok(proc)
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (
            (
                "alertname=CallpulseServiceLevelLow",
                "severity=critical",
                "component=kpi",
                "queue=billing",
                "job=callpulse",
            ),
            "oncall",
        ),
        (
            ("alertname=CallpulseAsaHigh", "severity=warning", "component=kpi", "queue=billing", "job=callpulse"),
            "supervisors",
        ),
        (
            (
                "alertname=CallpulseServiceLevelBudgetBurn",
                "severity=warning",
                "component=kpi",
                "queue=billing",
                "job=callpulse",
            ),
            "supervisors",
        ),
        (("alertname=CallpulseWatermarkLag", "severity=warning", "component=pipeline", "job=callpulse"), "oncall"),
        (("alertname=CallpulseExporterDown", "severity=critical", "component=pipeline", "job=callpulse"), "oncall"),
        (("alertname=SomethingElse",), "oncall"),
    ],
)
def test_amtool_routes(labels: tuple[str, ...], receiver: str) -> None:
    amtool = _amtool()
    proc = _run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_YML}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    _ok(proc)
    assert proc.stdout.strip() == receiver


def test_amtool_routes_detects_a_wrong_receiver() -> None:
    amtool = _amtool()
    proc = _run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_YML}",
        "--verify.receivers=oncall",
        "severity=warning",
        "component=kpi",
    )
    assert proc.returncode != 0
