"""The command line as a newcomer meets it: where the ledger is, read-only ledgers, output
fitted to the terminal, list options, one-line errors."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

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

