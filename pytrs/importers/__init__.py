"""Importers: copying another system's database into pytrs's own (`pytrs import znuny URL`).

Place in the flow: outside the mail flow, run once by an operator leaving Znuny. The reader
(`znuny_source`) turns Znuny's tables into plain rows, the mapper (`mapping`) translates ids and
names into this database's, and the writers store them: tickets, articles and history through
the ticket service's bulk writer (`pytrs.tickets.imports`), everything else through
`pytrs.schema.import_repo`. `znuny` runs the whole copy and `report` keeps its counts.
"""
