"""Writes. Each function validates, writes inside a transaction and raises ApplicationError."""
