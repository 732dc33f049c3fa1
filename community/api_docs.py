"""The API reference at /docs: the vendored Swagger UI (static/vendor), served under the site's
own Content-Security-Policy, with no CDN and no inline script. On by default for a site on plain
http (development), off for https unless EXPOSE_API_DOCS=true; /openapi.json stays either way
for integrations."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from community.core.web import render

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse, name="api_docs")
def api_docs(request: Request) -> HTMLResponse:
    return render(
        request,
        "community/api_docs.html",
        {"title": f"{request.app.title} – reference", "openapi_url": request.app.openapi_url},
    )
