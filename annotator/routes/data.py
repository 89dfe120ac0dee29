from django.urls import path

from annotator.views import data

urlpatterns = [
    path("p/<slug:slug>/data/", data.data_home, name="data_home"),
    path("p/<slug:slug>/data/exports/new/", data.export_new, name="export_new"),
    path("p/<slug:slug>/data/exports/<int:pk>/", data.export_row, name="export_row"),
    path("p/<slug:slug>/data/exports/<int:pk>/cancel/", data.export_cancel, name="export_cancel"),
    path("p/<slug:slug>/data/exports/<int:pk>/download/", data.export_download,
         name="export_download"),
    path("p/<slug:slug>/data/import/", data.data_import, name="data_import"),
    # Tokens belong to a user, not a project.
    path("account/tokens/", data.tokens, name="tokens"),
    path("account/tokens/<int:pk>/revoke/", data.token_revoke_view, name="token_revoke"),
]

NAV = [("Data", "annotator:data_home", "admin")]
