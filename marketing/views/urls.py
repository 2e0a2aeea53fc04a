from django.urls import path

from marketing.views.overview import OverviewView

urlpatterns = [
    path("", OverviewView.as_view(), name="overview"),
]
