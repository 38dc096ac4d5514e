"""A Znuny-7.0-shaped database for tests: its tables (`schema`), initial rows (`seed`), fixtures
on PostgreSQL and MariaDB (`fixtures`) and a realistic installation to run against (`generate`).
Tests using them carry the `znuny` marker."""
