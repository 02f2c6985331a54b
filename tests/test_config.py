"""The configuration is strict: wrong types, unknown keys and sections, secrets in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.cli.main import main

BASE = ('[graph]\ntenant = "contoso.onmicrosoft.com"\n'
        'client_id = "11111111-2222-3333-4444-555555555555"\n'
        'mailboxes = ["alice@contoso.com"]\n'
        '[salesforce]\ninstance_url = "https://contoso.my.salesforce.com"\n'
        'client_id = "3MVG9abc"\n[org]\ndomains = ["contoso.com"]\n'
        'product_users = { "alice@contoso.com" = "0055e000001AbCdAAK" }\n')


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCLEDGER_CONFIG", raising=False)
    monkeypatch.setenv("SYNCLEDGER_GRAPH_CLIENT_SECRET", "graph-very-secret")
    monkeypatch.setenv("SYNCLEDGER_SF_CLIENT_SECRET", "sf-very-secret")


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    config = tmp_path / "sync.toml"
    config.write_text(text)
    code = main(["config", "check", "--config", str(config)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("text, problems", [
    (BASE.replace('mailboxes = ["alice@contoso.com"]', 'mailboxes = "a@x"'),
     ['graph.mailboxes must be a list of strings, not a string (write mailboxes = ["a@x"])']),
    (BASE + 'sync_private_items = "false"\n',
     ["org.sync_private_items must be true or false, not a string"]),
    (BASE.replace("[org]", "[org]\nsync_privat_items = true") + '[graf]\ntenant = "x"\n'
     '[tls]\nclient_secret = "s3cr3t-value"\n',
     ["org.sync_privat_items is not a known key of [org]", "[graf] is not a known section",
      "tls.client_secret: secrets are not read from the config file"]),
    (BASE.replace('client_id = "3MVG9abc"', 'client_id = ""').replace(
        '"0055e000001AbCdAAK"', '"0065e000003XyZaAAK"') + "[graph.extra]\n",
     ["salesforce.client_id is empty", "does not have the key prefix 005"]),
])
def test_config_check_lists_every_problem_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
        problems: list[str]) -> None:
    code, out = check(tmp_path, text, capsys)
    assert code == 2
    for problem in problems:
        assert problem in out
    assert "very-secret" not in out and "s3cr3t" not in out


def test_a_misspelt_variable_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCLEDGER_GRAPH_MAILBOX", "bob@contoso.com")
    code, out = check(tmp_path, BASE, capsys)
    assert code == 2 and "SYNCLEDGER_GRAPH_MAILBOX is not a known variable" in out
    monkeypatch.delenv("SYNCLEDGER_GRAPH_MAILBOX")
    assert check(tmp_path, BASE, capsys)[0] == 0


def test_guard_and_every_org_setting_are_read_from_the_file_and_recorded_by_the_sync(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's [guard] section was refused as unknown, and the org settings other
    than domains, users and private items could only come from a feed line: a live
    deployment could not say which time zones its Salesforce org knows."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from adapters.cli.sync import run_cycle
    from adapters.sandbox.cloud import SandboxCloud
    from adapters.sync.config import load
    from ledger.intake import Ledger
    from ledger.store import Store

    text = BASE + ('auto_save = "off"\nsalesforce_time_zones = ["Europe/London"]\n'
                   'parked_max_age_hours = 48\nparked_removal_max_age_hours = 96\n'
                   '[guard]\nshare = 0.5\ncount = 7\nminimum = 3\n')
    code, out = check(tmp_path, text, capsys)
    assert code == 0, out
    config = load(str(tmp_path / "sync.toml"))
    assert (config.mass_change_share, config.mass_change_count,
            config.mass_change_minimum) == (0.5, 7, 3)
    wanted = {"auto_save": "off", "salesforce_time_zones": ["Europe/London"],
              "parked_max_age_hours": 48, "parked_removal_max_age_hours": 96}
    assert {k: config.org[k] for k in wanted} == wanted

    def clock() -> datetime:
        return datetime(2026, 11, 20, 13, 0, tzinfo=UTC)

    store = Store.open(str(tmp_path / "ledger.db"))
    try:
        with SandboxCloud.demo(clock=clock) as cloud:
            sandbox = cloud.config()
            run_cycle(store, replace(sandbox, org={**sandbox.org, **wanted}), clock=clock,
                      saves=[], sleep=lambda s: None, on_step=lambda step: None)
        recorded = Ledger(store).settings().as_record()
        assert {k: recorded[k] for k in wanted} == wanted
    finally:
        store.close()

    for bad, problem in (('auto_save = "always"', "org.auto_save: must be one of off"),
                         ("parked_max_age_hours = 100000", "org.parked_max_age_hours: must be"),
                         ("[guard]\nshare = true", "guard.share must be a number")):
        code, out = check(tmp_path, BASE + bad + "\n", capsys)
        assert code == 2 and problem in out, out
