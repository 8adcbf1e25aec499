"""The dashboard: server-rendered pages (Jinja2 + htmx), assets vendored in static/."""
