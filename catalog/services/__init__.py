"""Writes to the catalog (items, customers, events), split by topic."""
