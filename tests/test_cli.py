"""The command line as a newcomer meets it: where the ledger is, read-only ledgers, output
fitted to the terminal, list options, one-line errors."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import psycopg
import pytest

from adapters.cli import render
from adapters.cli.main import main
from tests.conftest import PG, require_postgres


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's ledger, built once for the module (read commands only use it)."""
    folder = tmp_path_factory.mktemp("demo")
    db = folder / "demo.db"
    assert main(["demo", "--db", str(db), "--json"]) == 0
    assert main(["project", "--db", str(db), "--json"]) == 0  # analytics too
    return db


def test_read_commands_work_on_a_read_only_ledger_and_leave_it_untouched(
        demo_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ro.db"
    db.write_bytes(demo_file.read_bytes())
    db.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    before = _digest(db)
    capsys.readouterr()
    assert main(["issues", "--db", str(db), "--json"]) == 0
    assert '"private-item"' in capsys.readouterr().out
    for argv in (["plan"], ["mapping"], ["conflicts"], ["analytics"], ["quarantine"]):
        assert main([*argv, "--db", str(db)]) == 0, argv
    assert main(["rebuild", "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert "read-only" in err and "Traceback" not in err
    assert _digest(db) == before


def test_read_commands_never_create_a_postgresql_ledger(
        capsys: pytest.CaptureFixture[str]) -> None:
    require_postgres()
    schema = "t_cli_absent_ledger"
    url = f"postgresql://postgres@127.0.0.1:5432/test?schema={schema}"
    for argv in (["issues"], ["plan"], ["quarantine"], ["explain", "x"], ["project"]):
        assert main([*argv, "--db", url]) == 4, argv
        assert "no ledger" in capsys.readouterr().err
    with psycopg.connect(**PG) as conn:  # type: ignore[arg-type]
        row = conn.execute("SELECT count(*) FROM information_schema.schemata "
                           "WHERE schema_name = %s", (schema,)).fetchone()
    assert row == (0,)


def test_db_before_or_after_the_command_and_the_env_rule(
        demo_file: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["--db", str(demo_file), "issues", "--json"]) == 0
    before = capsys.readouterr().out
    assert main(["issues", "--db", str(demo_file), "--json"]) == 0
    assert capsys.readouterr().out == before
    monkeypatch.setenv("SYNCLEDGER_DB", str(demo_file))
    assert main(["issues", "--json"]) == 0
    assert capsys.readouterr().out == before


@pytest.mark.parametrize("columns", [80, 120])
def test_every_table_line_fits_the_width(demo_file: Path, columns: int,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    for name in ("plan", "issues", "mapping", "conflicts", "analytics"):
        assert main([name, "--db", str(demo_file)]) == 0
        out = capsys.readouterr().out
        assert max(len(line) for line in out.splitlines()) <= columns, name


def test_table_cuts_with_an_ellipsis_and_wraps_prose() -> None:
    rows = [{"id": "A" * 60, "message": "word " * 30, "kind": "k"}]
    text = render.table(rows, ["id", "kind", "message"], columns_wide=60)
    assert "…" in text and all(len(line) <= 60 for line in text.splitlines())
    assert text.count("word") == 30  # wrapped, not cut


def test_the_plan_at_120_columns_reads_whole_words_and_field_names(
        demo_file: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's plan once broke 'series-master-update' over two lines, cut
    'set-categories' and the mailboxes, and showed fields as JSON cut mid-word."""
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["plan", "--db", str(demo_file)]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 120 for line in out.splitlines())
    assert '{"' not in out  # fields as names, not a JSON fragment
    assert "categories=Error" in out and "subject, " in out
    for word in ("series-master-update", "series-master-overwrite", "set-categories",
                 "alice@contoso.com", "carol@contoso.com"):
        assert word in out, word
    assert main(["plan", "--db", str(demo_file), "--json"]) == 0
    rows = orjson.loads(capsys.readouterr().out)
    assert any(r["fields"].get("categories") == ["Error"] for r in rows)  # JSON: whole


def test_analytics_at_120_columns_is_a_table_with_its_long_headings_wrapped(
        demo_file: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """It fell back to one block per meeting: three count columns were as wide as their
    headings (UNRESOLVED ATTENDEES) for one-digit values."""
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["analytics", "--db", str(demo_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("── 1 of") for line in lines)  # a table, not blocks
    header = "\n".join(lines[:2])
    assert "UNRESOLVED" in header and "ATTENDEES" in header and "CONTACTS" in header
    assert any(line.startswith("─") for line in lines[1:3])
    assert all(len(line) <= 120 for line in lines)


def test_a_wrapped_column_keeps_room_for_its_longest_word() -> None:
    rows = [{"kind": "k" * 30, "message": "see series-master-update for why"}]
    text = render.table(rows, ["kind", "message"], columns_wide=50)
    assert "series-master-update" in text and all(len(x) <= 50 for x in text.splitlines())


def test_limit_offset_and_csv(demo_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analytics", "--db", str(demo_file), "--json"]) == 0
    every = capsys.readouterr().out
    assert main(["analytics", "--db", str(demo_file), "--limit", "2", "--offset", "1",
                 "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("meeting_id,")
    assert lines[1].split(",")[0] in every


def test_unknown_filter_value_is_refused_with_the_close_ones(
        demo_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["issues", "--db", str(demo_file), "--kind", "private-itme"]) == 2
    err = capsys.readouterr().err
    assert "private-item" in err and len(err.strip().splitlines()) == 1


def test_version_and_a_mistyped_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("syncledger ")
    assert main(["isues"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'issues'" in err and len(err.strip().splitlines()) == 1



# --- no traceback, ever ---------------------------------------------------------------

DOCUMENTED_EXITS = {0, 1, 2, 3, 4}
DEAD_PG = "postgresql://postgres@127.0.0.1:9/test?schema=nobody_here"


class _Blocked(BaseException):
    """A case still running after its time (a server, a follower): not a traceback."""


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from adapters.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _base_argv(name: str, p: argparse.ArgumentParser) -> list[str]:
    """The command with every positional and required option given a plausible value."""
    argv = [name]
    for a in p._actions:
        if a.dest in ("help", "db"):
            continue
        value = str(next(iter(a.choices))) if a.choices else "x"
        if not a.option_strings and a.nargs != "?":
            argv.append(value)
        elif a.option_strings and a.required:
            argv += [a.option_strings[0], value]
    return argv


def _matrix(paths: dict[str, str]) -> list[list[str]]:
    """Every registered command against bad stores, bad option values and bad positionals
    (so a command added later is covered without touching this test), plus the cases
    issue 17 reported one by one."""
    bad_dbs = [paths["missing"], paths["folder"], paths["no_folder"], DEAD_PG, "mysql://x/y",
               paths["read_only"], paths["corrupt"], "sqlite:///" + paths["no_folder"]]
    bad_values = ["bogus", "-1", "0", "", paths["folder"], paths["no_folder"],
                  paths["corrupt"], "2026-13-45T99:00:00Z", "a=b=c"]
    cases: list[list[str]] = []
    for name, p in _subcommands().items():
        base = _base_argv(name, p)
        cases += [[*base, "--db", db] for db in bad_dbs]
        cases.append([name, "--no-such-option"])
        for a in p._actions:
            if a.dest in ("help", "db"):
                continue
            if a.option_strings and a.nargs != 0:
                cases += [[*base, a.option_strings[0], v, "--db", paths["writable"]]
                          for v in bad_values]
            elif not a.option_strings:
                if a.nargs == "?":  # optional positional: left out of the base
                    cases += [[*base, v, "--db", paths["writable"]] for v in bad_values]
                    continue
                at = base.index(str(next(iter(a.choices))) if a.choices else "x", 1)
                cases += [[*base[:at], v, *base[at + 1:], "--db", paths["writable"]]
                          for v in bad_values]
    ro, w, nf = paths["read_only"], paths["writable"], paths["no_folder"]
    cases += [
        ["state", "x", "--version", "0", "--db", w], ["state", "x", "--version", "-1"],
        ["demo", "--db", DEAD_PG], ["sync", "--db", DEAD_PG],
        ["replay", "--until", "2026-11-20T09:30:00Z", "--db", w, "--db-out", DEAD_PG],
        ["replay", "--until", "2026-11-20T09:30:00Z", "--db", w, "--db-out", nf],
        ["replay", "--until", "bogus", "--db", w, "--db-out", paths["fresh_out"]],
        ["sync", "--sandbox", "--db", paths["folder"]], ["sync", "--sandbox", "--db", nf],
        ["sync", "--sandbox", "--db", paths["sandbox"], "--record", nf],
        ["sync", "--sandbox", "--db", paths["sandbox"], "--cloud-state", paths["folder"]],
        ["sync", "--sandbox", "--db", paths["sandbox"], "--cloud-state", paths["corrupt"]],
        ["config", "check", "--config", paths["folder"]],
        ["config", "check", "--config", paths["corrupt"]],
        ["rebuild", "--db", ro], ["project", "--db", ro], ["sync", "--sandbox", "--db", ro],
        ["ingest", paths["feed"], "--db", ro], ["ingest", paths["feed"], "--db", w,
                                                "--batch-size", "0"],
        ["explain", "nope", "--db", ro], ["history", "nope", "--db", ro],
    ]
    return cases


@pytest.fixture
def bad_inputs(demo_file: Path, tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database, nor JSON, nor TOML [[\x00\xff")
    read_only = tmp_path / "read-only.db"
    read_only.write_bytes(demo_file.read_bytes())
    read_only.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    writable = tmp_path / "writable.db"
    writable.write_bytes(demo_file.read_bytes())
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"kind": "nonsense"}\n')
    return {"missing": str(tmp_path / "typo.db"), "folder": str(folder),
            "no_folder": str(tmp_path / "no" / "such" / "folder" / "f.db"),
            "corrupt": str(corrupt), "read_only": str(read_only), "writable": str(writable),
            "feed": str(feed), "sandbox": str(tmp_path / "sandbox.db"),
            "fresh_out": str(tmp_path / "past.db")}


def test_no_command_prints_a_traceback(bad_inputs: dict[str, str], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command x bad input: a documented exit code and a one-line reason, never an
    exception out of ``main`` nor a traceback on stderr. Prints the matrix size."""
    monkeypatch.chdir(tmp_path)  # nothing lands in the checkout
    monkeypatch.delenv("SYNCLEDGER_DB", raising=False)
    monkeypatch.delenv("SYNCLEDGER_CONFIG", raising=False)
    cases = _matrix(bad_inputs)

    def blocked(*_: object) -> None:
        raise _Blocked

    previous = signal.signal(signal.SIGALRM, blocked)
    failures: list[str] = []
    blocking = 0
    try:
        for argv in cases:
            signal.alarm(20)
            try:
                code: object = main(argv)
            except _Blocked:
                blocking += 1
                capsys.readouterr()  # what it printed while running is not the next case's
                continue
            except BaseException as exc:  # the thing this test exists to catch
                code = f"raised {type(exc).__name__}: {exc}"
            finally:
                signal.alarm(0)
            err = capsys.readouterr().err
            if code not in DOCUMENTED_EXITS:
                failures.append(f"{argv}: exit {code!r}")
            elif "Traceback" in err:
                failures.append(f"{argv}: traceback\n{err}")
            elif code != 0 and not any(line.startswith("syncledger") for line in
                                       err.splitlines()):
                failures.append(f"{argv}: exit {code} without a 'syncledger ...' line: {err!r}")
    finally:
        signal.signal(signal.SIGALRM, previous)
    with capsys.disabled():
        print(f"\ntraceback matrix: {len(cases)} cases over {len(_subcommands())} commands, "
              f"{len(failures)} failures, {blocking} still running after 20 s")
    if failures and os.environ.get("SYNCLEDGER_MATRIX_REPORT"):
        Path(os.environ["SYNCLEDGER_MATRIX_REPORT"]).write_text("\n".join(failures))
    assert not failures, "\n".join(failures[:30])
    assert len(cases) > 200


def test_the_installed_entry_point_fails_in_one_line(tmp_path: Path) -> None:
    """The real process (exit code, stderr) for one bad input, and a closed pipe."""
    exe = Path(sys.executable).with_name("syncledger")
    run = subprocess.run([str(exe), "state", "x", "--version", "0"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_ingest_summary_counts_every_event_and_says_how_long(
        store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The summary's "events appended" is what the ledger holds afterwards (each new
    meeting's opening event included), it says how many meetings were new and how long
    it took; a second ingest of the same file appends and opens nothing."""
    import json

    from adapters.sandbox.org import demo_feed_path
    from ledger.store import Store

    feed = str(demo_feed_path())
    assert main(["ingest", feed, "--db", store_url, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    store = Store.open(store_url)
    try:
        assert first["events_appended"] == store.max_position()
        assert first["meetings_opened"] == len(store.meeting_ids()) == 13
    finally:
        store.close()
    assert first["elapsed_s"] >= 0
    assert main(["ingest", feed, "--db", store_url]) == 0
    text = capsys.readouterr().out
    assert "events appended            0" in text and "meetings opened            0" in text
    assert "elapsed" in text and "lines/s" in text


def _syncledger(*argv: str, cwd: Path, stdin: bytes | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """The installed command in a child process, as a shell runs it."""
    return subprocess.run([sys.executable, "-m", "adapters.cli.main", *argv], cwd=cwd,
                          input=stdin, capture_output=True, timeout=300,
                          env={**os.environ, "COLUMNS": "100", **(env or {})})


def test_ingest_dash_reads_the_feed_from_standard_input(tmp_path: Path) -> None:
    from adapters.sandbox.org import demo_feed_path

    done = _syncledger("ingest", "-", "--db", str(tmp_path / "in.db"), cwd=tmp_path,
                       stdin=demo_feed_path().read_bytes())
    assert done.returncode == 0, done.stderr
    assert b"lines read                47" in done.stdout
    assert b"meetings opened           13" in done.stdout


def test_shell_completion_completes_commands_and_options(tmp_path: Path) -> None:
    """argcomplete's protocol as bash uses it: the words it offers for a partial line."""
    answers = tmp_path / "words"

    def complete(line: str) -> set[str]:
        done = _syncledger(cwd=tmp_path, env={
            "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(answers), "_ARGCOMPLETE_IFS": "\n"})
        assert done.returncode == 0, done.stderr
        return {w.strip() for w in answers.read_text().splitlines() if w.strip()}

    assert complete("syncledger expl") == {"explain"}
    assert {"--json", "--db"} <= complete("syncledger explain --")


def test_state_prints_sections_not_json(demo_file: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mapping", "--db", str(demo_file), "--json"]) == 0
    import json
    mid = json.loads(capsys.readouterr().out)[0]["meeting_id"]
    assert main(["state", mid, "--db", str(demo_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"meeting id  {mid}\n") and "{" not in out.splitlines()[0]
    assert "\nEXCHANGE ITEMS (" in out and "\n    subject  " in out
    assert max(len(line) for line in out.splitlines()) <= render.width()


def test_sandbox_cloud_sits_beside_its_ledger_and_fresh_empties_both(
        store_url: str, tmp_path: Path) -> None:
    """SQLite: ``<db>.cloud.json``; PostgreSQL: a file named after database and schema. A
    second run writes nothing; ``--fresh`` starts ledger and cloud again (the same events
    as the first run, not twice as many)."""
    from ledger.store import Store, StoreURL

    def events() -> int:
        store = Store.open(store_url)
        try:
            return store.max_position()
        finally:
            store.close()

    first = _syncledger("sync", "--sandbox", "--db", store_url, "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    url = StoreURL.parse(store_url)
    cloud = (Path(url.path + ".cloud.json") if url.kind == "sqlite" else
             tmp_path / f"syncledger-sandbox-{url.dbname}-{url.schema}.cloud.json")
    assert cloud.is_file(), sorted(p.name for p in tmp_path.iterdir())
    after_first = events()
    again = _syncledger("sync", "--sandbox", "--db", store_url, "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    import json
    assert json.loads(again.stdout)["writes"] == []
    fresh = _syncledger("sync", "--sandbox", "--fresh", "--db", store_url, "--json",
                        cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["writes"], "a fresh cloud and ledger sync again"
    assert cloud.is_file() and events() == after_first


def test_run_and_sync_in_the_sandbox_share_one_ledger_and_one_cloud(
        store_url: str, tmp_path: Path) -> None:
    """Both find the ledger by the one rule (here ``$SYNCLEDGER_DB``) and keep the cloud in
    the same file, so a ``sync --sandbox`` after two cycles of ``run --sandbox`` has nothing
    to write (the first cycle's Salesforce pull brings the Events that the second writes
    to Outlook).
    (``run --sandbox`` used ``./syncledger-sandbox.db`` whatever ``$SYNCLEDGER_DB`` said,
    and one cloud file for every PostgreSQL schema.)"""
    import json

    from ledger.store import StoreURL

    env = {"SYNCLEDGER_DB": store_url}
    ran = _syncledger("run", "--sandbox", "--cycles", "2", "--log-format", "json",
                      cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    assert not (tmp_path / "syncledger-sandbox.db").exists()
    url = StoreURL.parse(store_url)
    cloud = (Path(url.path + ".cloud.json") if url.kind == "sqlite" else
             tmp_path / f"syncledger-sandbox-{url.dbname}-{url.schema}.cloud.json")
    assert cloud.is_file(), sorted(p.name for p in tmp_path.iterdir())
    status = _syncledger("status", "--json", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert any(r["last_success"] for r in json.loads(status.stdout))
    # The table at 120 columns: every mailbox's whole last-success time and its token's
    # age as a person reads it, nothing cut (the long headings used to cut the times).
    table = _syncledger("status", cwd=tmp_path, env={**env, "COLUMNS": "120"})
    lines = table.stdout.decode().splitlines()
    rows = [line for line in lines if "@contoso.com" in line]
    assert len(rows) == 3 and max(len(line) for line in lines) <= 120, lines
    for line in rows:
        assert "…" not in line and re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  +\d+ s ",
                                             line), line
    synced = _syncledger("sync", "--sandbox", "--json", cwd=tmp_path, env=env)
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["writes"] == []


@pytest.mark.parametrize("command", [["run", "--sandbox", "--cycles", "1"],
                                     ["sync", "--sandbox"]])
def test_a_damaged_sandbox_cloud_file_is_one_line_not_a_traceback(
        command: list[str], tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    Path(str(db) + ".cloud.json").write_text("{not json")
    done = _syncledger(*command, "--db", str(db), cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "Traceback" not in err and "is not a saved sandbox cloud" in err, err
