"""Pages: dataset snapshots, training runs (launch, live progress, compare) and learner versions."""

from django.urls import path

from annotator.views import training as views

urlpatterns = [
    path("p/<slug:slug>/training/", views.training_list, name="training_list"),
    path("p/<slug:slug>/training/new/", views.training_new, name="training_new"),
    path("p/<slug:slug>/training/<int:pk>/", views.training_detail, name="training_detail"),
    path("p/<slug:slug>/training/<int:pk>/cancel/", views.training_cancel_view,
         name="training_cancel"),
    path("p/<slug:slug>/training/<int:pk>/resume/", views.training_resume_view,
         name="training_resume"),
    path("p/<slug:slug>/training/<int:pk>/log/", views.training_log, name="training_log"),
    path("p/<slug:slug>/training/<int:pk>/compare/", views.training_compare,
         name="training_compare"),
    path("p/<slug:slug>/snapshots/new/", views.snapshot_new, name="snapshot_new"),
    path("p/<slug:slug>/snapshots/preview/", views.snapshot_preview_counts,
         name="snapshot_preview"),
    path("p/<slug:slug>/snapshots/<int:pk>/", views.snapshot_detail, name="snapshot_detail"),
    path("p/<slug:slug>/learners/", views.learner_list, name="learner_list"),
    path("p/<slug:slug>/learners/<int:pk>/promote/", views.learner_promote_view,
         name="learner_promote"),
    path("p/<slug:slug>/learners/roll-back/", views.learner_roll_back_view,
         name="learner_roll_back"),
]

NAV = [
    ("Training", "annotator:training_list", "viewer"),
    ("Learners", "annotator:learner_list", "viewer"),
]
