"""Every command in README.md and docs/**/*.md is run, so none goes stale.

Conventions for fenced blocks (the info string after the backticks):

- ``sh`` / ``bash``: run, in order, by ``bash -euo pipefail`` in a scratch copy of the
  repository, against the installed ``callpulse`` CLI; each block must exit 0.
  Exported variables carry over to the file's later blocks, as in one terminal.
- ``sh kafka``: the same, in a test marked ``kafka`` that starts its own broker and sets
  ``CALLPULSE_KAFKA_BOOTSTRAP`` to it; a file holding one runs as a whole in that test.
- ``python``: run with the venv's Python in the same folder and environment.
- ``output`` right after a run block: each of its lines must appear in that block's
  output (stdout + stderr), in order, with runs of spaces collapsed; ``...`` matches
  any text.
- ``sh norun``: shown, never run (docker compose, a Grafana server, ``make`` targets
  that install or take minutes); kept to a handful.
- ``text``, ``json``, ``toml``, ``promql``: data or queries, not commands; PromQL
  blocks may only name metrics callpulse exports.

README.md runs in a clean copy (its first run makes the database). The pages in docs/
run in a copy that already holds what the README's first run leaves: callpulse.toml
from the example and data/callpulse.duckdb with a replayed simulated day (seed 7), and
CALLPULSE_PII_KEY set. Every copy's exporter listens on a free port (``port = 0``) so
runs never collide.

The README's Troubleshooting table is checked the other way round: each mistake is
made for real and the line the command prints must be the one the table quotes.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.procs import wait_until
from metrics.export import names
from metrics.export.rules import build_rules

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BIN = Path(sys.executable).parent
RUN = {"sh", "bash", "sh kafka", "python"}
DATA = {"text", "json", "toml", "promql", "output", "sh norun"}
MAX_NORUN = 6
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.M | re.S)
COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "data", "bench-out", "__pycache__", "*.duckdb", ".*_cache")


@dataclass(frozen=True, slots=True)
class Block:
    info: str
    body: str
    line: int
    expect: str | None  # the ``output`` block that follows, if any


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = [(m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]
    out: list[Block] = []
    for i, (info, body, line) in enumerate(found):
        if info == "output":
            continue
        nxt = found[i + 1] if i + 1 < len(found) else None
        out.append(Block(info, body, line, nxt[1] if nxt and nxt[0] == "output" else None))
    return out


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _params() -> Iterator[object]:
    for path in DOCS:
        kafka = any(b.info == "sh kafka" for b in blocks(path))
        yield pytest.param(path, marks=[pytest.mark.kafka] if kafka else [], id=_name(path))


def test_every_block_declares_what_it_is() -> None:
    norun = 0
    for path in DOCS:
        for b in blocks(path):
            assert b.info in RUN | DATA, f"{_name(path)}:{b.line}: fenced block with info {b.info!r}"
            assert b.expect is None or b.info in RUN, f"{_name(path)}:{b.line}: output after a block not run"
            norun += b.info == "sh norun"
    assert 0 < norun <= MAX_NORUN, f"{norun} blocks not run: keep them few"


def test_promql_names_only_exported_metrics() -> None:
    exported = {m.name for m in names.ALL}
    records = {r["record"] for g in build_rules()["groups"] for r in g["rules"] if "record" in r}
    suffixes = ("_bucket", "_count", "_sum")
    for path in DOCS:
        for b in blocks(path):
            if b.info != "promql":
                continue
            for record in re.findall(r"\w+:[\w:]+", b.body):
                assert record in records, f"{_name(path)}:{b.line}: {record} is not a recording rule"
            for used in re.findall(r"(?<![\w:])(callpulse_\w+)", b.body):
                base = next((used[: -len(s)] for s in suffixes if used.endswith(s)), used)
                assert used in exported or base in exported, f"{_name(path)}:{b.line}: {used}"


def test_expected_output_matching_can_fail() -> None:
    assert _matches("a  b\nc d e", "c d ...")
    assert not _matches("a b\nc d e", "c d ...\na b")  # order matters
    assert not _matches("read 5 accepted 5", "read 5  accepted 4")


def _squash(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text.strip())


def _matches(output: str, expected: str) -> bool:
    lines = [_squash(line) for line in output.splitlines()]
    at = 0
    for want in filter(None, (_squash(e) for e in expected.splitlines())):
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("...")))
        while at < len(lines) and not pattern.search(lines[at]):
            at += 1
        if at == len(lines):
            return False
        at += 1
    return True


def _env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLPULSE_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", HOME=str(home), COLUMNS="120", NO_COLOR="1")
    env.update(extra)
    return env


def _copy_repo(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=COPY_IGNORE)
    return dest


def _free_port_config(folder: Path) -> None:
    """The example config, its exporter on a free port (runs in parallel never collide)."""
    text = (ROOT / "callpulse.example.toml").read_text(encoding="utf-8")
    (folder / "callpulse.toml").write_text(text.replace("port = 9464", "port = 0"), encoding="utf-8")


@pytest.fixture(scope="session")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as the README's first run leaves it: config and a replayed day."""
    folder = tmp_path_factory.mktemp("first-run")
    _free_port_config(folder)
    env = _env(folder, {"CALLPULSE_PII_KEY": "docs-test-key-0123456789"})
    for cmd in (
        ["callpulse", "simulate", "--seed", "7", "--out", "day.jsonl"],
        ["callpulse", "replay", "day.jsonl"],
    ):
        proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
    (folder / "day.jsonl").unlink()
    return folder


def _run_file(path: Path, work: Path, extra_env: dict[str, str]) -> None:
    env_file = work.parent / f"{work.name}.env"
    env_file.write_text("")
    env = _env(work, extra_env)
    for b in blocks(path):
        if b.info not in RUN:
            continue
        where = f"{_name(path)}:{b.line}"
        script = work.parent / f"{work.name}.block"
        if b.info == "python":
            script.with_suffix(".py").write_text(b.body, encoding="utf-8")
            body = f'{BIN / "python"} "{script.with_suffix(".py")}"'
        else:
            body = b.body
        # The block runs after the environment its file's earlier blocks exported.
        script.write_text(f'source "{env_file}"\n{body}\nexport -p > "{env_file}"\n', encoding="utf-8")
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", str(script)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{b.body}\n--- output:\n{output[-4000:]}"
        if b.expect is not None:
            assert _matches(output, b.expect), f"{where}: expected\n{b.expect}\n--- got:\n{output[-4000:]}"


@pytest.mark.parametrize("path", list(_params()))
def test_doc_commands_run(path: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    extra: dict[str, str] = {}
    if any(b.info == "sh kafka" for b in blocks(path)):
        broker = request.getfixturevalue("docs_broker")
        extra["CALLPULSE_KAFKA_BOOTSTRAP"] = broker.bootstrap
    work = _copy_repo(tmp_path / "repo")
    if path != ROOT / "README.md":
        shutil.copytree(request.getfixturevalue("first_run"), work, dirs_exist_ok=True)
        extra["CALLPULSE_PII_KEY"] = "docs-test-key-0123456789"
    _run_file(path, work, extra)


@pytest.fixture(scope="module")
def docs_broker() -> Iterator[object]:
    from devtools.kafka import KafkaBroker

    with KafkaBroker() as broker:
        yield broker


# --- Troubleshooting: each row quotes what the command really prints ---------------------

BAD_CONFIGS = {
    "bad-key.toml": '[queues.billing]\nsl_formula = "x"\n',
    "bad-toml.toml": "[site\n",
    "bad-zone.toml": '[site]\ntimezone = "Mars/Base"\n',
}
# (case, command, the text README's Troubleshooting quotes and the command prints)
TROUBLES = [
    (
        "bad key",
        "callpulse kpis --config bad-key.toml",
        "queues.billing.sl_formula: must be one of negative, without_abandons, positive, answered_only, got 'x'",
    ),
    ("bad toml", "callpulse kpis --config bad-toml.toml", "not valid TOML: "),
    ("missing config", "callpulse kpis --config x.toml", "config error: x.toml: config file not found"),
    (
        "time zone",
        "callpulse kpis --config bad-zone.toml",
        "site.timezone: unknown time zone 'Mars/Base' (use an IANA name such as Europe/Berlin)",
    ),
    (
        "no key",
        "unset CALLPULSE_PII_KEY; callpulse replay day.jsonl",
        "config error: CALLPULSE_PII_KEY: not set; caller numbers are stored only as a keyed hash, so a key is required",
    ),
    ("no file", "callpulse replay day.jsonl", "error: day.jsonl: no such file"),
    (
        "unknown input",
        "echo 'hello' > x.log; callpulse replay x.log",
        "could not recognise the format from its first lines; pass --format",
    ),
    ("kpis format", "callpulse kpis --format xml", "error: --format: expected one of table, json, got 'xml'"),
    ("sql format", "callpulse sql 'SELECT 1' --format xml", "expected one of table, csv, json"),
    ("report format", "callpulse report daily --format xml", "table, csv, parquet, html"),
    ("no database", "callpulse kpis --db none.duckdb", "no database yet (run "),
    ("nothing to back up", "callpulse backup b.duckdb --db none.duckdb", "no database to back up"),
    (
        "backup exists",
        "touch backups-x.duckdb; callpulse backup backups-x.duckdb",
        "exists; use --force to overwrite it",
    ),
    (
        "restore over a database",
        "callpulse restore data/callpulse.duckdb data/other.duckdb; callpulse restore data/other.duckdb data/callpulse.duckdb",
        "a database already exists there; use --force to overwrite it",
    ),
    (
        "no grafana token",
        "unset GRAFANA_TOKEN; callpulse dashboards publish --url http://127.0.0.1:9",
        "error: set GRAFANA_TOKEN to a Grafana service-account token",
    ),
]


def _troubleshooting() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return _squash(text[text.index("## Troubleshooting") : text.index("## Links")].replace("\n", " "))


def _fails_saying(folder: Path, command: str, needle: str, env: dict[str, str]) -> None:
    proc = subprocess.run(
        ["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    said = _squash((proc.stdout + proc.stderr).replace("\n", " "))
    assert proc.returncode != 0, f"{command}: exit 0\n{said}"
    assert _squash(needle) in said, f"{command}: {needle!r} not in\n{said}"
    assert _squash(needle) in _troubleshooting(), f"README Troubleshooting does not quote {needle!r}"


@pytest.mark.parametrize(("case", "command", "needle"), TROUBLES, ids=[t[0] for t in TROUBLES])
def test_troubleshooting_quotes_the_real_message(
    case: str, command: str, needle: str, first_run: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "site"
    shutil.copytree(first_run, folder)
    for name, text in BAD_CONFIGS.items():
        (folder / name).write_text(text, encoding="utf-8")
    env = _env(folder, {"CALLPULSE_PII_KEY": "docs-test-key-0123456789", "COLUMNS": "400"})
    _fails_saying(folder, command, needle, env)


def test_troubleshooting_port_in_use_and_kafka_unreachable(first_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "site"
    shutil.copytree(first_run, folder)
    env = _env(folder, {"CALLPULSE_PII_KEY": "docs-test-key-0123456789", "COLUMNS": "400"})
    with socket.socket() as taken, socket.socket() as closed:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: nothing answers there
        (folder / "port.toml").write_text(f"[exporter]\nport = {taken.getsockname()[1]}\n", encoding="utf-8")
        demo = "callpulse demo --config port.toml --db p.duckdb --speed 0 --max-events 10"
        _fails_saying(folder, demo, "cannot serve /metrics and the wallboard there (Address already in use)", env)
        (folder / "kafka.toml").write_text('[kafka]\nstart_timeout = "2s"\n', encoding="utf-8")
        produce = f"callpulse produce --simulate --config kafka.toml --bootstrap 127.0.0.1:{closed.getsockname()[1]}"
        _fails_saying(folder, produce, "error: kafka: no broker reachable at 127.0.0.1:", env)


def test_troubleshooting_database_in_use(first_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "site"
    shutil.copytree(first_run, folder)
    env = _env(folder, {"CALLPULSE_PII_KEY": "docs-test-key-0123456789", "COLUMNS": "400"})
    db = folder / "busy.duckdb"
    demo = subprocess.Popen(
        ["callpulse", "demo", "--db", str(db), "--speed", "1", "--duration", "300", "--no-serve"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The analysts' copy appears only while the demo holds the database open: waiting on
        # it never races the demo for the file's lock, as a probing connection would.
        wait_until((folder / "busy.analyst.duckdb").exists, timeout=120, what="the demo's analysts' copy")
        (folder / "one.jsonl").write_text(
            '{"type":"agent","agent_id":"a","state":"login","at":"2026-03-02T09:00:00Z"}\n'
        )
        _fails_saying(folder, "callpulse replay one.jsonl --db busy.duckdb", "in use by another process (PID", env)
        _fails_saying(
            folder,
            "callpulse retention --days 3 --db busy.duckdb",
            "in use; a running pipeline applies analyst.retention_days itself",
            env,
        )
    finally:
        demo.terminate()
        demo.wait(timeout=60)
