"""Agents' accounts apart from storage: hashing their passwords (see `passwords`)."""
