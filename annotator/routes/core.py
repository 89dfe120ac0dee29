from django.urls import path

from annotator.views import projects, system

urlpatterns = [
    path("", projects.home, name="home"),
    path("projects/", projects.project_list, name="project_list"),
    path("p/<slug:slug>/", projects.project_detail, name="project_detail"),
    path("p/<slug:slug>/guidelines/", projects.project_guidelines, name="project_guidelines"),
    path("p/<slug:slug>/settings/", projects.project_settings, name="project_settings"),
    path("p/<slug:slug>/critic/retrain/", projects.critic_retrain, name="critic_retrain"),
    path("system/health/", system.health, name="health"),
]

NAV = [("Overview", "annotator:project_detail", "viewer")]
