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
