"""What an article puts into the search index, and how a search string becomes terms.

Place in the flow: every article reaches the database through `tickets.writes.Writes`
(postmaster batches, the ticket service, outgoing mail); `Writes.article` builds the article's
`Document` here and `Writes.flush` writes them with one executemany, in the same transaction
as the article itself, so the index never lags behind or runs ahead of the articles. Migration
0012 filled it for the articles stored before, with the same cuts. The engines' index itself
is `schema/fulltext.py`; the web search reads it through `tickets/listing.py`.
"""

from __future__ import annotations

import re

from pytrs.schema import storable
from pytrs.schema.fulltext import ADDRESS_CHARS, BODY_CHARS, SUBJECT_CHARS, Document, Terms
from pytrs.tickets.model import ArticleInput

# Bodies can be megabytes (a pasted log); the first 64 KB of text carry what people search
# for, and the index (and the mail path's cost) stays bounded. The same cuts as 0012.
# At most this many terms of a search are used: a pasted paragraph is not a query.
MAX_TERMS = 12

_WORD = re.compile(r"[^\W_]+")
_ADDRESS = re.compile(r"[\w.+-]*@[\w.+-]*")
_ADDRESS_JUNK = re.compile(r"[^\w.@+-]+")


def document(content: ArticleInput, article_id: int) -> Document:
    """The index entry of a new article (subject, From/To/Cc, start of the text body)."""
    addresses = " ".join(a for a in (content.from_, content.to, content.cc) if a)
    return Document(
        article_id=article_id,
        subject=storable.clean(content.subject[:SUBJECT_CHARS]),
        body=storable.clean(content.body[:BODY_CHARS]),
        addresses=storable.clean(addresses[:ADDRESS_CHARS]),
    )


def terms(query: str) -> Terms:
    """`query` as the index understands it: a term with an ``@`` is an address (matched in
    From/To/Cc), every other run of letters and digits a word (matched anywhere)."""
    words: list[str] = []
    addresses: list[str] = []
    for raw in query.split():
        if "@" in raw:
            found = _ADDRESS.search(_ADDRESS_JUNK.sub("", raw))
            if found and _WORD.search(found.group()):
                addresses.append(found.group().lower())
        else:
            words.extend(w.lower() for w in _WORD.findall(raw))
    unique_words = tuple(dict.fromkeys(words))[:MAX_TERMS]
    return Terms(unique_words, tuple(dict.fromkeys(addresses))[: MAX_TERMS - len(unique_words)])
