"""API endpoints (see annotator/api/urls.py)."""

urlpatterns: list = []
