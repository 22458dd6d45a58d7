"""The terapi command refuses bad set-ups with a message, not a traceback."""

from __future__ import annotations

import pytest

from terapi_cli.main import main


def test_run_without_servers_or_key_names_what_is_missing(monkeypatch, capsys) -> None:
    for name in ("TERAPI_DATABASE_URL", "TERAPI_AMQP_URL", "TERAPI_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run", "vault"]) == 2
    message = capsys.readouterr().err
    assert "TERAPI_DATABASE_URL" in message and "TERAPI_AMQP_URL" in message
    assert "TERAPI_ENCRYPTION_KEY" in message


def test_services_without_secrets_do_not_need_the_encryption_key(monkeypatch, capsys) -> None:
    monkeypatch.delenv("TERAPI_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("TERAPI_DATABASE_URL", raising=False)
    monkeypatch.setenv("TERAPI_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    assert main(["run", "logs"]) == 2
    assert "TERAPI_ENCRYPTION_KEY" not in capsys.readouterr().err


def test_malformed_encryption_key_is_refused(monkeypatch, capsys) -> None:
    monkeypatch.setenv("TERAPI_DATABASE_URL", "postgresql://nowhere/none")
    monkeypatch.setenv("TERAPI_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    monkeypatch.setenv("TERAPI_ENCRYPTION_KEY", "not-a-key")
    assert main(["run", "vault"]) == 2
    assert "TERAPI_ENCRYPTION_KEY" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run"], ["run", "nonsense"], ["keys"]])
def test_bad_arguments_exit_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
