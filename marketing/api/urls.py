from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from marketing.api import (
    audiences,
    auth,
    consents,
    customers,
    explanations,
    jobs,
    next_best_offers,
    offers,
    plans,
    recommendations,
    segments,
    training,
    uploads,
)

# No ".json" suffix routes: they are not in the schema, and the custom actions never took
# the `format` argument they pass (500). `?format=json` or an Accept header choose JSON.
router = DefaultRouter()
router.include_format_suffixes = False
router.register("customers", customers.CustomerViewSet)
router.register("offers", offers.OfferViewSet)
router.register("interactions", customers.InteractionViewSet)
router.register("consents", consents.ConsentRecordViewSet)
router.register("segments", segments.SegmentViewSet)
router.register("uploads", uploads.UploadViewSet)
router.register("jobs", jobs.JobViewSet)
router.register("training-runs", training.TrainingRunViewSet)
router.register("scoring-runs", training.ScoringRunViewSet)
router.register("audiences", audiences.AudienceViewSet)
router.register("exports", audiences.ExportViewSet)
router.register("suppressions", audiences.SuppressionViewSet)
router.register("explanations", explanations.ExplanationRunViewSet)
router.register("campaign-plans", plans.CampaignPlanViewSet)
router.register("recommendation-runs", recommendations.RecommendationRunViewSet)

urlpatterns = [
    path(
        "training-runs/<int:pk>/explanations/",
        explanations.TrainingRunExplanationView.as_view(),
        name="api-training-run-explanations",
    ),
    path(
        "customers/<int:pk>/explanations/",
        explanations.CustomerExplanationView.as_view(),
        name="api-customer-explanations",
    ),
    path(
        "scoring-runs/<int:pk>/audience-diversity/",
        recommendations.AudienceDiversityView.as_view(),
        name="api-audience-diversity",
    ),
    path(
        "next-best-offers/",
        next_best_offers.NextBestOffersView.as_view(),
        name="api-next-best-offers",
    ),
    path("", include(router.urls)),
    # Exchanges a username and password for an API token (then: "Authorization: Token <key>").
    path("auth/token/", auth.TokenLoginView.as_view(), name="api-token"),
    # Revoke the token sent with the request, or every token of its user.
    path("auth/logout/", auth.TokenLogoutView.as_view(), name="api-logout"),
    path("auth/logout-all/", auth.TokenLogoutAllView.as_view(), name="api-logout-all"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
