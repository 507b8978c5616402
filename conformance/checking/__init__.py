"""The vocabulary checks are written in: ``check``/``fail`` and friends (:mod:`.checks`), the
world a check acts in and its run context (:mod:`.world`), the HTTP client that captures
redacted evidence (:mod:`.client`), and the search helpers (:mod:`.search_oracle`)."""
