"""REST API under /api/ (namespace "api"): one module per feature, each with `urlpatterns`."""

from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotator.api import (
    campaigns,
    critic,
    data,
    endpoints,
    oversight,
    projects,
    review,
    risks,
    studies,
    training,
)

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's init code as a file, so the strict CSP holds here too.
    # Its page has one fixed inline <style> (box-sizing, background): allowed by its hash only.
    path("docs/", csp_update({"style-src": ["'sha256-MMpT0iDxyjALd9PdfepImGX3DBfJPXZ4IlDWdPAgtn0='"]})(
        SpectacularSwaggerSplitView.as_view(url_name="api:schema")), name="docs"),
]
for feature in (projects, critic, review, campaigns, risks, training, studies, data, oversight,
                endpoints):
    urlpatterns += feature.urlpatterns
