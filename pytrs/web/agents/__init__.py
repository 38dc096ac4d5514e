"""The agents' pages: the queue view, search, and one ticket (zoom, actions, downloads)."""
