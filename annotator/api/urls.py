"""REST API under /api/ (namespace "api"): one module per feature, each with `urlpatterns`."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from annotator.api import campaigns, data, projects, review, training

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
for feature in (projects, review, campaigns, training, data):
    urlpatterns += feature.urlpatterns
