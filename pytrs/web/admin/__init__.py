"""The administrators' pages: queues, agents, mail accounts, filters, templates, outbox."""
