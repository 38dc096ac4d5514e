"""Inbound agent authentication: is a mail from an agent's address really the agent's?

The postmaster asks before it lets a mail act as an agent's answer: DKIM (`dkim_verify`), the
receiving MTA's Authentication-Results (`authres`), the reply token in a notification's
address (`reply_token`), weighed together in `authenticity`.
"""
