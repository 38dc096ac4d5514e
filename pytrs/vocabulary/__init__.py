"""The ground floor: names and small records every other floor may share.

Nothing here does I/O or imports another pytrs package: Znuny's fixed ids and names
(`znuny`), the record an ingress path hands to the inbox (`inbox`), what storage knows about
existing tickets in the shape routing reads (`known`), the Message-ID lookup key
(`message_ids`) and the parser's limits (`parse_limits`).
"""
