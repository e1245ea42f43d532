"""The generated rules and the Alertmanager config against the real promtool / amtool.

Renders the rules with the default settings next to copies of tests/promtool/*.yml
(whose rule_files name ``callpulse.rules.yml``) and runs ``promtool test rules``.
Missing binaries fail the tests (never skip; the ``promtool`` / ``amtool`` fixtures say
which Debian package to install, or run scripts/setup-test-deps.sh).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from metrics.export.rules import render_rules
from tests.support.prometheus import Tool

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL_TESTS = sorted((ROOT / "tests" / "promtool").glob("*.yml"))
ALERTMANAGER_YML = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RULES_NAME = "callpulse.rules.yml"


def routes(amtool: Tool, receiver: str, *labels: str) -> subprocess.CompletedProcess[str]:
    """``amtool config routes test``: does an alert with ``labels`` reach ``receiver``?"""
    return amtool(
        "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}", f"--verify.receivers={receiver}", *labels
    )


def test_check_rules(tmp_path: Path, promtool: Tool) -> None:
    path = tmp_path / RULES_NAME
    path.write_text(render_rules(), encoding="utf-8")
    proc = promtool.ok("check", "rules", path)
    assert "SUCCESS" in proc.stdout


def test_there_are_promtool_tests() -> None:
    assert {p.name for p in PROMTOOL_TESTS} >= {"kpi_alerts.yml", "slo_burn.yml", "pipeline.yml"}


@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(tmp_path: Path, test_file: Path, promtool: Tool) -> None:
    (tmp_path / RULES_NAME).write_text(render_rules(), encoding="utf-8")
    shutil.copy(test_file, tmp_path / test_file.name)
    proc = promtool.ok("test", "rules", test_file.name, cwd=tmp_path)
    assert "SUCCESS" in proc.stdout and "FAILED" not in proc.stdout


def test_promtool_unit_tests_of_the_rules_rendered_for_the_default_config(tmp_path: Path, promtool: Tool) -> None:
    """What `callpulse alerts render` writes for the shipped defaults (burn factors fitted to
    the 0.80 target): pages for reachable burns only (tests/promtool/default_config)."""
    from pipeline.cli.alerts import render_for_config
    from pipeline.core.config import Config

    (tmp_path / RULES_NAME).write_text(render_for_config(Config()), encoding="utf-8")
    test_file = ROOT / "tests" / "promtool" / "default_config" / "slo_burn.yml"
    shutil.copy(test_file, tmp_path / test_file.name)
    proc = promtool.ok("test", "rules", test_file.name, cwd=tmp_path)
    assert "SUCCESS" in proc.stdout and "FAILED" not in proc.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path, promtool: Tool) -> None:
    """A wrong expectation must fail, so the passing runs above mean something."""
    (tmp_path / RULES_NAME).write_text(render_rules(), encoding="utf-8")
    text = (ROOT / "tests" / "promtool" / "kpi_alerts.yml").read_text(encoding="utf-8")
    broken = text.replace("over the last 15m is 60%", "over the last 15m is 61%")
    assert broken != text
    (tmp_path / "broken.yml").write_text(broken, encoding="utf-8")
    proc = promtool("test", "rules", "broken.yml", cwd=tmp_path)
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr


def test_amtool_check_config(amtool: Tool) -> None:
    proc = amtool.ok("check-config", ALERTMANAGER_YML)
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
        (
            ("alertname=CallpulseUnderstaffed", "severity=warning", "component=kpi", "queue=billing", "job=callpulse"),
            "supervisors",
        ),
        (("alertname=CallpulseWatermarkLag", "severity=warning", "component=pipeline", "job=callpulse"), "oncall"),
        (("alertname=CallpulseExporterDown", "severity=critical", "component=pipeline", "job=callpulse"), "oncall"),
        (("alertname=SomethingElse",), "oncall"),
    ],
)
def test_amtool_routes(labels: tuple[str, ...], receiver: str, amtool: Tool) -> None:
    proc = routes(amtool, receiver, *labels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receiver


def test_amtool_routes_detects_a_wrong_receiver(amtool: Tool) -> None:
    assert routes(amtool, "oncall", "severity=warning", "component=kpi").returncode != 0


def test_deploy_prometheus_config_is_valid(tmp_path: Path, promtool: Tool) -> None:
    """deploy/prometheus/prometheus.yml (DNS discovery of every worker replica) with the
    rules it names rendered beside it, as docs/deploy.md has them rendered."""
    shutil.copy(ROOT / "deploy" / "prometheus" / "prometheus.yml", tmp_path / "prometheus.yml")
    (tmp_path / "callpulse-rules.yml").write_text(render_rules(), encoding="utf-8")
    proc = promtool.ok("check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS" in proc.stdout
