from django.urls import path

from annotator.views import campaigns

urlpatterns = [
    path("p/<slug:slug>/campaigns/", campaigns.campaign_list, name="campaign_list"),
    path("p/<slug:slug>/campaigns/new/", campaigns.campaign_launch, name="campaign_launch"),
    path("p/<slug:slug>/campaigns/<int:pk>/", campaigns.campaign_detail, name="campaign_detail"),
    path("p/<slug:slug>/campaigns/<int:pk>/cancel/", campaigns.campaign_cancel,
         name="campaign_cancel"),
    path("p/<slug:slug>/campaigns/<int:pk>/resume/", campaigns.campaign_resume,
         name="campaign_resume"),
]

NAV = [("Campaigns", "annotator:campaign_list", "viewer")]
