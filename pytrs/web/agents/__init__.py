"""The agents' pages: the queue view (`/`), search (`/search`), and one ticket (zoom, actions,
downloads).

Each module exposes `routes` for `pytrs/web/routes.py`; the lists read through
`tickets/listing.py` and `tickets/search_reads.py` with the signed-in agent's readable queues.
"""
