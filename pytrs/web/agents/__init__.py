"""The agents' pages: the queue view (`/`) and the search (`/search`); the zoom is beside them.

Each module exposes `routes` for `pytrs/web/routes.py`; reads go through `tickets/listing.py`
and `tickets/search_reads.py` with the signed-in agent's readable queues.
"""
