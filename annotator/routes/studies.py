"""Pages: label-source studies (launch, progress, results)."""

from django.urls import path

from annotator.views import studies as views

urlpatterns = [
    path("p/<slug:slug>/studies/", views.study_list, name="study_list"),
    path("p/<slug:slug>/studies/new/", views.study_new, name="study_new"),
    path("p/<slug:slug>/studies/<int:pk>/", views.study_detail, name="study_detail"),
    path("p/<slug:slug>/studies/<int:pk>/cancel/", views.study_cancel, name="study_cancel"),
    path("p/<slug:slug>/studies/<int:pk>/resume/", views.study_resume, name="study_resume"),
]

NAV = [("Studies", "annotator:study_list", "viewer")]
