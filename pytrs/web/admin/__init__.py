"""Admin pages: what administrators steer (queues, agents, filters, responses …)."""
