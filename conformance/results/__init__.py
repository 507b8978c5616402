"""Verdicts and their roll-up, and the ``result.json`` document built from them."""
