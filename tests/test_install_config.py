"""`$NAME` and `${NAME}` in the configuration's file paths: systemd's `${CREDENTIALS_DIRECTORY}`.

Expanded in every key ending in `_file` (tables, `[[arrays]]`, nested tables), from the
environment `load_config` is given; an unset variable is a configuration error naming the key
and the variable, reported by `pytrs config check` in one line with exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytrs.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
CREDENTIALS = {"CREDENTIALS_DIRECTORY": "/run/credentials/pytrs.service"}


def test_credentials_directory_is_expanded_in_file_paths() -> None:
    config = parse_config(
        {
            "outbound": {"loop_secret_file": "${CREDENTIALS_DIRECTORY}/pytrs_loop.key"},
            "smtp": {
                "tls_cert_file": "/etc/pytrs/tls.crt",
                "tls_key_file": "$CREDENTIALS_DIRECTORY/pytrs_tls.key",
            },
            "mail_accounts": [
                {
                    "type": "imap",
                    "host": "127.0.0.1",
                    "user": "support",
                    "password_file": "${CREDENTIALS_DIRECTORY}/pytrs_imap",
                }
            ],
        },
        CREDENTIALS,
    )
    folder = CREDENTIALS["CREDENTIALS_DIRECTORY"]
    assert config.outbound.loop_secret_file == f"{folder}/pytrs_loop.key"
    assert config.smtp.tls_key_file == f"{folder}/pytrs_tls.key"
    assert config.mail_accounts[0].password_file == f"{folder}/pytrs_imap"


def test_only_file_paths_are_expanded_and_a_double_dollar_is_a_dollar() -> None:
    config = parse_config(
        {
            "outbound": {"ca_file": "/etc/ssl/$$weird", "helo_name": "$CREDENTIALS_DIRECTORY"},
        },
        CREDENTIALS,
    )
    assert config.outbound.ca_file == "/etc/ssl/$weird"
    assert config.outbound.helo_name == "$CREDENTIALS_DIRECTORY"


def test_an_unset_credentials_directory_names_the_key_and_says_what_to_do() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"outbound": {"password_file": "${CREDENTIALS_DIRECTORY}/pytrs_relay"}}, {})
    assert caught.value.errors == [
        "outbound.password_file: ${CREDENTIALS_DIRECTORY} is not set; run under systemd with "
        "LoadCredential= or give a path"
    ]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("$HOME_OF_KEYS/dkim.key", "${HOME_OF_KEYS} is not set; set it, or give the path"),
        ("${}/dkim.key", "a '$' that starts no variable"),
        ("/keys/${UNCLOSED", "a '$' that starts no variable"),
    ],
)
def test_other_variables_and_stray_dollars_are_errors(value: str, says: str) -> None:
    data = {"dkim_keys": [{"domain": "example.com", "selector": "s1", "private_key_file": value}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, {"HOME_OF_KEYS": ""})
    assert any(
        e.startswith("dkim_keys[0].private_key_file: ") and says in e for e in caught.value.errors
    )


def test_an_environment_override_is_expanded_too(tmp_path: Path) -> None:
    config_file = tmp_path / "pytrs.toml"
    config_file.write_text('[web]\nlisten = ""\n')
    config = load_config(
        config_file,
        {**CREDENTIALS, "PYTRS_OUTBOUND_PASSWORD_FILE": "${CREDENTIALS_DIRECTORY}/pytrs_relay"},
    )
    assert config.outbound.password_file == "/run/credentials/pytrs.service/pytrs_relay"


def test_config_check_outside_systemd_says_it_in_one_line(tmp_path: Path) -> None:
    config_file = tmp_path / "pytrs.toml"
    config_file.write_text(
        '[outbound]\nloop_secret_file = "${CREDENTIALS_DIRECTORY}/pytrs_loop.key"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    done = subprocess.run(
        [sys.executable, "-m", "pytrs", "--config", str(config_file), "config", "check"],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "pytrs: config: outbound.loop_secret_file: "
        "${CREDENTIALS_DIRECTORY} is not set; run under systemd with LoadCredential= or give a path"
    ]


def test_config_check_under_systemd_reads_the_credential(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "pytrs_loop.key").write_text("0123456789abcdef0123456789abcdef\n")
    config_file = tmp_path / "pytrs.toml"
    config_file.write_text(
        '[outbound]\nloop_secret_file = "${CREDENTIALS_DIRECTORY}/pytrs_loop.key"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytrs", "--config", str(config_file), "config", "check"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "CREDENTIALS_DIRECTORY": str(credentials)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
