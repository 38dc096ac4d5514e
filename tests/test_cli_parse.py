"""`pytrs parse FILE.eml…`: the admin's view of what the parser makes of a mail (SPEC S2, S6).

Runs `main()` in-process with no configuration file and no database: the command must work
from any directory, keep going past unreadable files and exit 1 only at the end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytrs.cli import main

DATA = Path(__file__).resolve().parent / "data" / "parsers"
FILENAMES = DATA / "q-encoded-word-filenames.eml"
KOI8 = DATA / "q-koi8-r.eml"
FIELDS = [
    "file", "subject", "from", "to", "cc", "message_id", "in_reply_to", "references", "date",
    "body_text", "has_html", "attachments", "is_bounce", "bounce", "is_feedback_report",
    "feedback", "is_auto_reply", "is_out_of_office", "is_list", "loop", "warnings",
]  # fmt: skip


@pytest.fixture(autouse=True)
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory without pytrs.toml and no PYTRS_* settings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTRS_CONFIG", raising=False)
    monkeypatch.delenv("PYTRS_PARSER_MAX_MESSAGE_BYTES", raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(["parse", *argv])
    return status, capsys.readouterr().out


def test_json_for_one_file_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, "--json", str(FILENAMES))
    assert status == 0
    record = json.loads(out)
    assert list(record) == FIELDS
    assert record["file"] == str(FILENAMES)
    assert record["subject"] == "encoded words"
    assert record["date"] == "2026-03-03T09:00:00+00:00"
    assert record["has_html"] is True
    assert record["attachments"][0] == {
        "filename": "Logö.png",
        "content_type": 'image/png; name="=?utf-8?B?TG9nw7YucG5n?="',
        "size": 12,
        "inline": True,
        "content_id": "<logo@example.org>",
    }
    assert [a["filename"] for a in record["attachments"][1:]] == [
        "Angebot für Müller.pdf",
        "Überweisung.xlsx",
    ]
    assert (record["is_bounce"], record["bounce"], record["loop"]) == (False, None, False)


def test_json_for_several_files_is_a_list_and_bad_files_fail_at_the_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out = run(capsys, "--json", str(KOI8), "missing.eml", str(FILENAMES))
    assert status == 1
    records = json.loads(out)
    assert [r["file"] for r in records] == [str(KOI8), "missing.eml", str(FILENAMES)]
    assert records[0]["subject"] == "Заказ не пришёл"
    assert records[1] == {"file": "missing.eml", "error": "No such file or directory"}
    assert records[2]["subject"] == "encoded words"


def test_jsonl_streams_one_compact_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, "--jsonl", str(KOI8), str(DATA), str(FILENAMES))
    assert status == 1  # A directory cannot be read as a mail.
    lines = out.splitlines()
    assert len(lines) == 3 and all(": " not in line[:30] for line in lines)
    first, bad, last = (json.loads(line) for line in lines)
    assert first["body_text"].startswith("Здравствуйте!")
    assert set(bad) == {"file", "error"}
    assert last["attachments"][2]["size"] == 4


def test_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, str(DATA / "q-duplicate-headers.eml"), str(FILENAMES))
    assert status == 0
    assert out.startswith(f"== {DATA / 'q-duplicate-headers.eml'}\nsubject: the first subject\n")
    assert "to: one@example.com, two@example.com\n" in out
    assert "warning: 2 Subject headers, the first kept\n" in out
    assert "flags: has_html\n" in out
    assert (
        'attachment 1: Logö.png (image/png; name="=?utf-8?B?TG9nw7YucG5n?=", 12 bytes, inline, '
        "<logo@example.org>)\n"
    ) in out
    assert "\nbody\n" in out


def test_parser_limits_come_from_the_configuration(
    capsys: pytest.CaptureFixture[str], no_config: Path
) -> None:
    (no_config / "pytrs.toml").write_text("[parser]\nmax_message_bytes = 100\n", encoding="utf-8")
    status, out = run(capsys, "--json", str(KOI8))
    record = json.loads(out)
    assert status == 0
    assert record["subject"] == "Заказ не пришёл"
    assert record["body_text"] == ""
    assert record["warnings"][0].startswith("message larger than 100 bytes: headers only")


def test_a_broken_configuration_falls_back_to_the_built_in_limits(
    capsys: pytest.CaptureFixture[str], no_config: Path
) -> None:
    status = main(["--config", str(no_config / "absent.toml"), "parse", "--jsonl", str(KOI8)])
    captured = capsys.readouterr()
    assert status == 0
    assert json.loads(captured.out)["warnings"] == []
    assert "using the built-in parser limits" in captured.err


def test_no_database_is_touched(capsys: pytest.CaptureFixture[str], no_config: Path) -> None:
    assert run(capsys, str(KOI8))[0] == 0
    assert list(no_config.iterdir()) == []  # No var/pytrs.db appeared.


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        buffer = __import__("io").BytesIO(b"Subject: from stdin\n\nhello\n")

    monkeypatch.setattr("sys.stdin", Stdin)
    status, out = run(capsys, "--jsonl", "-")
    assert status == 0
    assert json.loads(out)["subject"] == "from stdin"


def test_json_and_jsonl_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--json", "--jsonl", str(KOI8)]) == 2
    assert "not allowed with argument --json" in capsys.readouterr().err


_DSN = (
    b"From: MAILER-DAEMON@mx.example.org\r\nTo: support@example.com\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.org>\r\n"
    b"Date: Tue, 03 Mar 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nYour mail could not be delivered.\r\n"
    b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n"
    b"\r\nFinal-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\n"
    b"Status: 5.1.1\r\n\r\n--b--\r\n"
)
_HEAD = b"From: alice@customer.example\r\nTo: support@example.com\r\nMessage-ID: <%d@x>\r\n"


def _summary_files(folder: Path) -> list[str]:
    mails = {
        "bounce.eml": _DSN,
        "ooo.eml": _HEAD % 1 + b"Date: Tue, 03 Mar 2026 09:00:00 +0000\r\n"
        b"Auto-Submitted: auto-replied\r\nSubject: Out of Office: away\r\n\r\nBack Monday.\r\n",
        "list.eml": _HEAD % 2 + b"Date: Tue, 03 Mar 2026 09:00:00 +0000\r\n"
        b"List-Id: <news.example.org>\r\nSubject: news\r\n\r\nNews.\r\n",
        "undated.eml": _HEAD % 3 + b"Subject: no date\r\n\r\nHello.\r\n",
        "undated-too.eml": _HEAD % 4 + b"Subject: no date either\r\n\r\nHello.\r\n",
    }
    for name, raw in mails.items():
        (folder / name).write_bytes(raw)
    return sorted(str(folder / name) for name in mails)


def test_summary_counts_kinds_of_mail_and_warnings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    files = _summary_files(tmp_path)
    status, out = run(capsys, "--summary", "--json", *files)
    assert status == 0
    figures = json.loads(out)
    assert figures["files"] == 5 and figures["unreadable"] == 0
    assert figures["bounces"] == {
        "total": 1, "permanent": 1, "temporary": 0, "without_recipient": 0,
        "by_format": {"rfc3464": 1},
    }  # fmt: skip
    assert (figures["auto_replies"], figures["out_of_office"], figures["lists"]) == (1, 1, 1)
    assert figures["warnings_by_kind"]["Date missing"] == 2
    status, out = run(capsys, "--summary", *files)
    assert status == 0
    assert "bounces            1 (permanent 1, temporary 0, no recipient found 0)" in out
    assert "       2  Date missing" in out


def test_summary_names_unreadable_files_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    files = _summary_files(tmp_path)
    status, out = run(capsys, "--summary", *files, str(tmp_path / "missing.eml"))
    assert status == 1
    assert "files              6\nunreadable         1\n" in out
    assert f"  {tmp_path / 'missing.eml'}: No such file or directory" in out


def test_warning_kinds_leave_out_the_mails_particulars() -> None:
    from pytrs.commands.parse_summary import warning_kind

    assert warning_kind("more than 100 MIME parts, the rest skipped") == (
        "more than N MIME parts, the rest skipped"
    )
    assert warning_kind("body: 8-bit C1 bytes in text labelled 'iso-8859-1'") == (
        "body: 8-bit C1 bytes in text labelled …"
    )
    assert warning_kind("header Subject read as windows-1252, the charset of the body") == (
        "header Subject read as …, the charset of the body"
    )


def test_summary_over_znunys_samples(capsys: pytest.CaptureFixture[str]) -> None:
    """The admin's use: a whole folder of real mail, every file read, its bounces found."""
    corpus = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "znuny"
    if not corpus.is_dir():
        pytest.skip("../shared/corpus/znuny is not here")
    files = sorted(str(p) for p in corpus.rglob("*.box"))
    status, out = run(capsys, "--summary", "--jsonl", *files)
    figures = json.loads(out)
    assert status == 0 and (figures["files"], figures["unreadable"]) == (len(files), 0)
    assert figures["bounces"]["total"] >= 2 and figures["with_attachments"] >= 10
