"""The ground floor: names and small records every other floor may share.

Nothing here does I/O or imports another pytrs package: Znuny's fixed ids and names
(`znuny`), the record an ingress path hands to the inbox (`inbox`), what storage knows about
existing tickets in the shape routing reads (`known`), the Message-ID lookup key
(`message_ids`), the parser's limits (`parse_limits`), and the records of what storage keeps
for the stages that compile them: postmaster filter rules (`filter_rules`) and auto-responses
(`auto_responses`).
"""
