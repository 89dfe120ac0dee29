"""Expert review pages: the queue, undo, progress/agreement and the admins' adjudication and
gold items."""

from django.urls import path

from annotator.views import review

urlpatterns = [
    path("p/<slug:slug>/review/", review.review_queue, name="review_queue"),
    path("p/<slug:slug>/review/items/<int:pk>/decide/", review.review_decide, name="review_decide"),
    path("p/<slug:slug>/review/undo/", review.review_undo_last, name="review_undo"),
    path("p/<slug:slug>/review/stats/", review.review_stats, name="review_stats"),
    path("p/<slug:slug>/adjudicate/", review.adjudication_list, name="adjudication_list"),
    path("p/<slug:slug>/adjudicate/<int:pk>/", review.adjudication_detail,
         name="adjudication_detail"),
    path("p/<slug:slug>/adjudicate/<int:pk>/settle/", review.adjudication_settle,
         name="adjudication_settle"),
    path("p/<slug:slug>/adjudicate/<int:pk>/gold/", review.adjudication_gold,
         name="adjudication_gold"),
]

NAV = [
    ("Review", "annotator:review_queue", "expert"),
    ("Agreement", "annotator:review_stats", "viewer"),
    ("Adjudicate", "annotator:adjudication_list", "admin"),
]
