"""The Oversight page: expert reliability, gold accuracy, assisted vs blind (admins)."""

from django.urls import path

from annotator.views import oversight

urlpatterns = [
    path("p/<slug:slug>/oversight/", oversight.oversight, name="oversight"),
    path("p/<slug:slug>/oversight/refresh/", oversight.oversight_refresh,
         name="oversight_refresh"),
    path("p/<slug:slug>/oversight/settings/", oversight.oversight_settings,
         name="oversight_settings"),
]

NAV = [("Oversight", "annotator:oversight", "admin")]
