"""The app's page URLs, one module per feature; each may also add entries to the project nav.

A feature module defines `urlpatterns` and optionally `NAV`: (label, url name, minimum role)
tuples, shown in the project navigation to members with at least that role.
"""

from annotator.routes import campaigns, core, data, oversight, review, risks, studies, training

app_name = "annotator"

FEATURES = (core, review, campaigns, risks, training, studies, data, oversight)
urlpatterns = [pattern for feature in FEATURES for pattern in feature.urlpatterns]
PROJECT_NAV = [entry for feature in FEATURES for entry in getattr(feature, "NAV", ())]
