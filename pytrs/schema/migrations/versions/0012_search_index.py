"""search index and queue view indexes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

The full-text index of articles (``article_search``, see ``pytrs/schema/fulltext.py``: FTS5 on
SQLite, a weighted ``tsvector`` with a GIN index on PostgreSQL, InnoDB FULLTEXT indexes on
MariaDB), filled from every stored
article, and the ticket indexes the web queue view pages through: one per sort key, each
ending in the id so that keyset paging reads the index in order, and the owner for "mine".
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same cuts as pytrs/tickets/search_index.py applies to new articles.
SUBJECT_CHARS, ADDRESS_CHARS, BODY_CHARS = 2_000, 8_000, 65_536

TICKET_INDEXES = {
    "ix_ticket_create_time_id": ["create_time", "id"],
    "ix_ticket_change_time_id": ["change_time", "id"],
    "ix_ticket_priority_id": ["ticket_priority_id", "id"],
    "ix_ticket_title_id": ["title", "id"],
    "ix_ticket_user_id": ["user_id"],
}

_SOURCE = " FROM article_data_mime"
_SUBJECT = f"substr(coalesce(a_subject, ''), 1, {SUBJECT_CHARS})"
_BODY = f"substr(coalesce(a_body, ''), 1, {BODY_CHARS})"
_ADDRESSES = (
    "substr(coalesce(a_from, '') || ' ' || coalesce(a_to, '') || ' ' || coalesce(a_cc, ''), "
    f"1, {ADDRESS_CHARS})"
)


def _split(expression: str) -> str:
    """The text with ``@ . / : < >`` as spaces, so that PostgreSQL's parser, which keeps
    addresses, host names and URLs whole and drops tag-like text, yields their words as FTS5
    does (as in schema/fulltext.py)."""
    return f"translate({expression}, '@./:<>', '      ')"


def upgrade() -> None:
    for name, columns in TICKET_INDEXES.items():
        op.create_index(name, "ticket", columns)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE article_search ("
            " article_id BIGINT NOT NULL PRIMARY KEY REFERENCES article (id),"
            " document TSVECTOR NOT NULL)"
        )
        op.execute(
            "INSERT INTO article_search (article_id, document) SELECT article_id, "
            f"setweight(to_tsvector('simple', {_split(_SUBJECT)}), 'A') || "
            f"setweight(to_tsvector('simple', translate({_ADDRESSES}, '<>', '  ')) || "
            f"to_tsvector('simple', {_split(_ADDRESSES)}), 'B') || "
            f"setweight(to_tsvector('simple', {_split(_BODY)}), 'C')" + _SOURCE
        )
        op.execute("CREATE INDEX ix_article_search_document ON article_search USING GIN (document)")
        # The planner estimates a word it has no statistics for from the rarest word it has:
        # with the default 100 it took any rare word (a ticket number, an address) for a common
        # one and read the whole index newest-first looking for it (a quarter second at
        # 300,000 articles) instead of asking the GIN index. 1000 keeps 10,000 words' counts.
        op.execute("ALTER TABLE article_search ALTER COLUMN document SET STATISTICS 1000")
    elif op.get_bind().dialect.name == "mysql":
        _create_mysql_index()
    else:
        op.execute(
            "CREATE VIRTUAL TABLE article_search USING fts5("
            " subject, body, addresses, content='',"
            " tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "INSERT INTO article_search (rowid, subject, body, addresses) "
            f"SELECT article_id, {_SUBJECT}, {_BODY}, {_ADDRESSES}" + _SOURCE
        )


def _create_mysql_index() -> None:
    # Accent- and case-blind words, as FTS5's remove_diacritics and PostgreSQL's lower-cased
    # tokens; every word indexed (the stop word list is read as an index is made).
    op.execute(
        "CREATE TABLE article_search ("
        " article_id BIGINT NOT NULL PRIMARY KEY,"
        " subject TEXT NOT NULL, body MEDIUMTEXT NOT NULL, addresses TEXT NOT NULL,"
        " CONSTRAINT fk_article_search_article FOREIGN KEY (article_id) REFERENCES article (id))"
        " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
    )
    op.execute(
        "INSERT INTO article_search (article_id, subject, body, addresses) SELECT article_id, "
        f"LEFT(COALESCE(a_subject, ''), {SUBJECT_CHARS}), LEFT(COALESCE(a_body, ''), {BODY_CHARS}),"
        f" LEFT(CONCAT_WS(' ', COALESCE(a_from, ''), COALESCE(a_to, ''), COALESCE(a_cc, '')), "
        f"{ADDRESS_CHARS})" + _SOURCE
    )
    op.execute("SET SESSION innodb_ft_enable_stopword = OFF")
    op.execute(
        "CREATE FULLTEXT INDEX ix_article_search_text ON article_search (subject, body, addresses)"
    )
    op.execute("CREATE FULLTEXT INDEX ix_article_search_subject ON article_search (subject)")
    op.execute("SET SESSION innodb_ft_enable_stopword = ON")


def downgrade() -> None:
    op.execute("DROP TABLE article_search")
    mysql = op.get_bind().dialect.name == "mysql"
    for name in TICKET_INDEXES:
        if mysql and name in _MYSQL_FOREIGN_KEY_INDEXES:
            # MariaDB dropped the index it had made for the foreign key when this one could
            # serve it, and refuses to drop this one alone: the key gets its own back.
            key, column = _MYSQL_FOREIGN_KEY_INDEXES[name]
            op.execute(f"ALTER TABLE ticket DROP INDEX {name}, ADD INDEX {key} ({column})")
        else:
            op.drop_index(name, table_name="ticket")


# The ticket indexes above that lead with a foreign key's column: (the key, its column).
_MYSQL_FOREIGN_KEY_INDEXES = {
    "ix_ticket_priority_id": ("fk_ticket_ticket_priority_id_ticket_priority", "ticket_priority_id"),
    "ix_ticket_user_id": ("fk_ticket_user_id_users", "user_id"),
}
