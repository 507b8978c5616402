"""pytest plugin entry point (``pytest11``). Kept cheap to import: hooks only."""
