"""The full-text index of articles, on each engine's own machinery (storage floor).

Place in the flow: the ticket writes (`tickets/search_index.py`, called from the one flush every
article goes through) hand documents here in the article's own transaction; the web search
(`tickets/listing.py`) asks for the articles that match. Like `schema/database.py`, this module
knows which engine it talks to, so nothing above it does (`tests/test_floors.py`):

* SQLite: a contentless FTS5 table ``article_search(subject, body, addresses)`` whose rowid is
  the article id, tokenizer ``unicode61 remove_diacritics 2`` (``muller`` finds ``Müller``).
  Contentless because the text is in ``article_data_mime`` already; an article is never deleted
  and never changes its text, so the index never needs the old values back.
* PostgreSQL: ``article_search(article_id, document tsvector)`` with a GIN index, config
  ``simple`` (no stemming, any language; ``@ . / : < >`` read as spaces, as FTS5 does, with the
  addresses also kept whole): subject weighted A, addresses B, body C, so that a
  query may ask for a word in the subject (``:A``) or an address in From/To/Cc (``:B``). The
  column keeps statistics of 10,000 words, so that the planner knows a rare word for rare and
  asks the GIN index rather than reading newest-first (see migration 0012).
* MariaDB: ``article_search(article_id, subject, body, addresses)`` with InnoDB FULLTEXT indexes
  (all three columns, and the subject alone), collation ``utf8mb4_unicode_ci`` so that a word
  matches whatever its case and accents (``muller`` finds ``Müller``), no stop words (the index
  is built with them off). InnoDB reads ``@ . / : < >`` as spaces, as FTS5 does. Words shorter
  than its token size (3) are never indexed: those, and whole addresses, are matched with
  LIKE on the stored text, beside the index's condition for the rest.

The ticket is not stored: a merge moves articles to another ticket, so the ticket and its queue
are always read from ``article`` at query time. Migration 0012 creates the index and fills it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, column, func, literal_column, table, text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, FromClause

INDEX = "article_search"
# What of an article is indexed (`tickets/search_index.py` cuts new articles to these).
SUBJECT_CHARS, ADDRESS_CHARS, BODY_CHARS = 2_000, 8_000, 65_536

_SQLITE_INSERT = text(
    "INSERT INTO article_search (rowid, subject, body, addresses) "
    "VALUES (:article_id, :subject, :body, :addresses)"
)
# PostgreSQL's parser keeps `a@b.example`, `b.example` and URLs as single tokens and drops
# whatever looks like a tag (`<a@b.example>`, `<script>`), where FTS5 and the query side
# (`tickets/search_index.terms`) see words: the text is indexed with those characters made
# spaces, so "example" or "script" finds what it finds on SQLite; the addresses are indexed
# whole as well (only their angle brackets made spaces), for a search by a whole address.
_SPLIT = "translate({}, '@./:<>', '      ')"
_POSTGRESQL_DOCUMENT = (
    f"setweight(to_tsvector('simple', {_SPLIT.format(':subject')}), 'A') || "
    "setweight(to_tsvector('simple', translate(:addresses, '<>', '  ')) || "
    f"to_tsvector('simple', {_SPLIT.format(':addresses')}), 'B') || "
    f"setweight(to_tsvector('simple', {_SPLIT.format(':body')}), 'C')"
)
_POSTGRESQL_INSERT = text(
    f"INSERT INTO article_search (article_id, document) VALUES (:article_id, "
    f"{_POSTGRESQL_DOCUMENT})"
)
_MYSQL_INSERT = text(
    "INSERT INTO article_search (article_id, subject, body, addresses) "
    "VALUES (:article_id, :subject, :body, :addresses)"
)
# InnoDB's innodb_ft_min_token_size (a server setting, 3 by default): shorter words are not in
# the index.
_MYSQL_MIN_TOKEN = 3


# The index as SQL sees it, for joins: its id column is the article id.
_PG_INDEX = table(INDEX, column("article_id"), column("document"))
_MYSQL_INDEX = table(
    INDEX, column("article_id"), column("subject"), column("body"), column("addresses")
)
_SQLITE_INDEX = table(INDEX, column("rowid"))


@dataclass(frozen=True, slots=True)
class Document:
    """What one article contributes to the index (already cut to size by the caller)."""

    article_id: int
    subject: str
    body: str
    addresses: str


@dataclass(frozen=True, slots=True)
class Terms:
    """A parsed search: word tokens (letters and digits only) and whole addresses (letters,
    digits and ``. @ + - _``), so neither can carry the engines' query syntax."""

    words: tuple[str, ...]
    addresses: tuple[str, ...]


def is_index_table(name: str | None) -> bool:
    """Whether `name` is the index or one of FTS5's shadow tables (not in the models)."""
    return bool(name) and (name == INDEX or str(name).startswith(INDEX + "_"))


def _postgresql(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def write(conn: AsyncConnection, documents: Sequence[Document]) -> None:
    """Index `documents` (one executemany) inside the caller's transaction."""
    if not documents:
        return
    statement = {"postgresql": _POSTGRESQL_INSERT, "mysql": _MYSQL_INSERT}.get(
        conn.dialect.name, _SQLITE_INSERT
    )
    await conn.execute(
        statement,
        [{"article_id": d.article_id, "subject": d.subject, "body": d.body,
          "addresses": d.addresses} for d in documents],
    )  # fmt: skip


def hits(conn: AsyncConnection) -> tuple[FromClause, Any]:
    """(the index as a FROM item, its article id column), to be joined to `article`; with
    `matches` as the WHERE clause and ``ORDER BY`` the id column, newest articles first."""
    if _postgresql(conn):
        return _PG_INDEX, _PG_INDEX.c.article_id
    if conn.dialect.name == "mysql":
        return _MYSQL_INDEX, _MYSQL_INDEX.c.article_id
    return _SQLITE_INDEX, _SQLITE_INDEX.c.rowid


def matches(conn: AsyncConnection, terms: Terms, *, subject_only: bool) -> ColumnElement[bool]:
    """The condition selecting the articles with every word (in the subject when
    `subject_only`) and every address (in From/To/Cc)."""
    if _postgresql(conn):
        words = [f"'{w}':A" if subject_only else f"'{w}'" for w in terms.words]
        query = " & ".join(words + [f"'{a}':B" for a in terms.addresses])
        return _PG_INDEX.c.document.op("@@")(func.to_tsquery("simple", query))
    if conn.dialect.name == "mysql":
        return _mysql_matches(terms, subject_only=subject_only)
    parts = []
    if terms.words:
        quoted = " AND ".join(f'"{w}"' for w in terms.words)
        parts.append(f"{{subject}} : ({quoted})" if subject_only else f"({quoted})")
    parts += [f'addresses : "{a}"' for a in terms.addresses]
    return literal_column(INDEX).op("MATCH")(" AND ".join(parts))


def _mysql_matches(terms: Terms, *, subject_only: bool) -> ColumnElement[bool]:
    """MATCH … AGAINST in boolean mode, every indexed word required (`+word`; words are
    letters and digits only, so they carry no operator), LIKE for the rest."""
    c = _MYSQL_INDEX.c
    searched = [c.subject] if subject_only else [c.subject, c.body, c.addresses]
    long_words = [w for w in terms.words if len(w) >= _MYSQL_MIN_TOKEN]
    conditions: list[ColumnElement[bool]] = []
    if long_words:
        against = " ".join(f"+{w}" for w in long_words)
        conditions.append(mysql.match(*searched, against=against).in_boolean_mode())
    for word in terms.words:
        if len(word) < _MYSQL_MIN_TOKEN:  # a substring: the nearest LIKE has to a short word
            conditions.append(func.concat_ws(" ", *searched).like(f"%{word}%"))
    for address in terms.addresses:
        # Escaped: an address may hold "_", which LIKE reads as any character.
        escaped = address.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(c.addresses.like(f"%{escaped}%", escape="\\"))
    return and_(*conditions)


# The stored articles' text, cut as new articles are (for filling the index from the tables).
_STORED = {
    ":subject": f"substr(coalesce(a_subject, ''), 1, {SUBJECT_CHARS})",
    ":body": f"substr(coalesce(a_body, ''), 1, {BODY_CHARS})",
    ":addresses": "substr(coalesce(a_from, '') || ' ' || coalesce(a_to, '') || ' ' || "
    f"coalesce(a_cc, ''), 1, {ADDRESS_CHARS})",
}


def create_statements(conn: Connection) -> list[str]:
    """The DDL of the index on `dialect`, and the statement filling it from every stored
    article: for a database whose tables were not made by the migrations (`pytrs db attach`
    beside Znuny). Migration 0012 keeps its own copy, as migrations must not change."""
    if conn.dialect.name != "postgresql":
        raise ValueError(f"no full-text index to attach on {conn.dialect.name}")
    document = _POSTGRESQL_DOCUMENT
    for name, expression in _STORED.items():
        document = document.replace(name, expression)
    return [
        f"CREATE TABLE {INDEX} (article_id BIGINT NOT NULL PRIMARY KEY REFERENCES article (id),"
        " document TSVECTOR NOT NULL)",
        f"CREATE INDEX ix_{INDEX}_document ON {INDEX} USING GIN (document)",
        # As migration 0012 explains: statistics of 10,000 words keep rare words rare.
        f"ALTER TABLE {INDEX} ALTER COLUMN document SET STATISTICS 1000",
        f"INSERT INTO {INDEX} (article_id, document) SELECT article_id, {document} "
        "FROM article_data_mime",
    ]
