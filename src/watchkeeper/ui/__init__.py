"""The web UI: a single-page app of hand-written ES modules, CSS and SVG, with no build step.

`mount_ui(app)` serves the static assets under `/ui/` and `index.html` for every client route
(`/`, `/traces`, `/traces/{id}`, ...), so a reload or a shared link lands on the right page.
Only those paths are claimed: `/api`, `/v1`, `/metrics`, `/healthz`, `/readyz`, `/docs` and
`/openapi.json` stay with the routes that own them, whatever order they are registered in.
"""

from __future__ import annotations

from watchkeeper.ui._mount import CLIENT_ROUTES, CONTENT_SECURITY_POLICY, STATIC_DIR, mount_ui

__all__ = ["CLIENT_ROUTES", "CONTENT_SECURITY_POLICY", "STATIC_DIR", "mount_ui"]
