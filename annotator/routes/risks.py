"""The Risks page: discovered clusters of successful attacks, and the admins' decisions."""

from django.urls import path

from annotator.views import risks

urlpatterns = [
    path("p/<slug:slug>/risks/", risks.risks_home, name="risks_home"),
    path("p/<slug:slug>/risks/run/", risks.risk_discovery_run, name="risk_discovery_run"),
    path("p/<slug:slug>/risks/discoveries/<int:pk>/cancel/", risks.risk_discovery_cancel,
         name="risk_discovery_cancel"),
    path("p/<slug:slug>/risks/discoveries/<int:pk>/resume/", risks.risk_discovery_resume,
         name="risk_discovery_resume"),
    path("p/<slug:slug>/risks/<int:pk>/adopt/", risks.risk_adopt_view, name="risk_adopt"),
    path("p/<slug:slug>/risks/<int:pk>/dismiss/", risks.risk_dismiss_view, name="risk_dismiss"),
]

NAV = [("Risks", "annotator:risks_home", "viewer")]
