"""The bounce regression corpus (tests/data/bounces): recall per family, no false positives.

Every sample was written for pytrs from a public description of its format (the source of each
is in tests/data/bounces/INDEX.md, which is also the expectation table read here). Bounces must
be recognised with the failed recipient, the status, `permanent` and, where the report carries
it, the original Message-ID; the negatives (ordinary mail, a person writing about a bounce,
auto-replies, list mail, mail that merely passed through the same systems) must not be.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pytrs.parsers import parse_mail
from pytrs.parsers.bounces import detect_bounce
from pytrs.parsers.classify import Classification, classify
from pytrs.parsers.textscan import fields_of

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bounces"
MIN_RECALL = 0.97


@dataclass(frozen=True)
class Sample:
    file: str
    family: str
    recipient: str
    status: str
    permanent: bool
    original: str


def _samples() -> list[Sample]:
    samples = []
    for line in (CORPUS / "INDEX.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or not cells[0].endswith(".eml"):
            continue
        name, family, recipient, status, permanent, original = cells[:6]
        samples.append(
            Sample(name, family, recipient, status, permanent == "yes", original.strip("-"))
        )
    return samples


SAMPLES = _samples()
BOUNCES = [sample for sample in SAMPLES if sample.family != "negative"]
NEGATIVES = [sample for sample in SAMPLES if sample.family == "negative"]


def classified(sample: Sample) -> Classification:
    return classify(parse_mail((CORPUS / sample.file).read_bytes()))


def test_index_lists_every_file_once() -> None:
    listed = [sample.file for sample in SAMPLES]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(path.name for path in CORPUS.glob("*.eml"))


def test_every_family_has_two_samples_and_there_are_negatives() -> None:
    per_family: dict[str, int] = defaultdict(int)
    for sample in BOUNCES:
        per_family[sample.family] += 1
    assert min(per_family.values()) >= 2, per_family
    assert len(NEGATIVES) >= 5


@pytest.mark.parametrize("sample", BOUNCES, ids=lambda sample: sample.file)
def test_bounce_sample(sample: Sample) -> None:
    result = classified(sample)
    bounce = result.bounce
    assert bounce is not None, "not recognised"
    assert (bounce.recipient, bounce.status, bounce.permanent) == (
        sample.recipient,
        sample.status,
        sample.permanent,
    )
    assert bounce.original_message_id == sample.original
    assert "\n" not in bounce.diagnostic and len(bounce.diagnostic) <= 500
    assert not result.is_auto_reply and result.loop


@pytest.mark.parametrize("sample", NEGATIVES, ids=lambda sample: sample.file)
def test_negative_sample_is_not_a_bounce(sample: Sample) -> None:
    assert classified(sample).bounce is None


def test_recall_and_family_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Recall over the corpus ≥ 97 %, printed with the per-family table for the closing note."""
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for sample in BOUNCES:
        bounce = classified(sample).bounce
        row = rows[sample.family]
        row[0] += 1
        if bounce is not None:
            row[1] += 1
            row[2] += bounce.recipient == sample.recipient
            row[3] += bounce.status == sample.status
    total = sum(row[0] for row in rows.values())
    recognised = sum(row[1] for row in rows.values())
    false_positives = sum(classified(sample).bounce is not None for sample in NEGATIVES)
    lines = ["| family | samples | recognised | recipient | status |", "|---|---|---|---|---|"]
    for family in sorted(rows):
        count, found, recipient, status = rows[family]
        lines.append(f"| {family} | {count} | {found} | {recipient} | {status} |")
    lines.append(f"recall {recognised}/{total} = {recognised / total:.3f}; ")
    lines[-1] += f"false positives {false_positives}/{len(NEGATIVES)}"
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert recognised / total >= MIN_RECALL
    assert false_positives == 0


HOSTILE_BODIES = [
    "    Could not be delivered to: <" * 100_000,
    "there was an error delivering your mail to " * 60_000,
    "-------server message\n" * 200_000,
    "Final-Recipient: rfc822; a@b\n" * 100_000,
    "did not reach the following recipient(s):\n" + "x@" * 1_000_000,
    '{"notificationType":"Bounce","bounce":' + "[" * 50_000,
    '{"notificationType":"Bounce","bounce":{"bouncedRecipients":[' + "{}," * 200_000 + "{}]}}",
    "\n" * 2_000_000,
    "a" * 3_000_000,
]


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=lambda body: repr(body[:24]))
def test_hostile_bodies_are_linear_for_every_family(body: str) -> None:
    """Each family's reader on a huge, adversarial body: no exception, bounded time."""
    mails = [parse_mail((CORPUS / sample.file).read_bytes()) for sample in BOUNCES]
    hostile = [replace(mail, body=body, attachments=()) for mail in mails]
    started = time.perf_counter()
    for mail in hostile:
        detect_bounce(mail, fields_of(mail))  # not classify: it would hide an exception
    assert time.perf_counter() - started < 5.0
