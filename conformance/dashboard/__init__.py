"""The national dashboard over the registry: Starlette + Jinja2, charts as inline SVG, no script.

- :mod:`~conformance.dashboard.app` — the live server (pages and their JSON, strict CSP)
- :mod:`~conformance.dashboard.pages` — which view each page shows, templates, links
- :mod:`~conformance.dashboard.charts` — SVG drawn on the server
- :mod:`~conformance.dashboard.static` — the same pages written as files (``dashboard --static DIR``)
"""
