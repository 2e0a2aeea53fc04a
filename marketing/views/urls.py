from django.urls import path

from marketing.views import (
    audiences,
    customers,
    explanations,
    jobs,
    models,
    overview,
    plans,
    recommendations,
    segments,
    uploads,
)

urlpatterns = [
    path("", overview.OverviewView.as_view(), name="overview"),
    path("demo-data/", overview.DemoDataView.as_view(), name="overview-demo"),
    path("refresh/", overview.OverviewRefreshView.as_view(), name="overview-refresh"),
    path("uploads/", uploads.UploadListView.as_view(), name="upload-list"),
    path("uploads/new/", uploads.UploadCreateView.as_view(), name="upload-create"),
    path("uploads/<int:pk>/", uploads.UploadDetailView.as_view(), name="upload-detail"),
    path("uploads/<int:pk>/mapping/", uploads.UploadMappingView.as_view(), name="upload-mapping"),
    path("uploads/<int:pk>/preview/", uploads.UploadPreviewView.as_view(), name="upload-preview"),
    path(
        "uploads/<int:pk>/errors.csv", uploads.UploadErrorFileView.as_view(), name="upload-errors"
    ),
    path("customers/", customers.CustomerListView.as_view(), name="customer-list"),
    path("customers/<int:pk>/", customers.CustomerDetailView.as_view(), name="customer-detail"),
    path("customers/<int:pk>/erase/", customers.CustomerEraseView.as_view(), name="customer-erase"),
    path(
        "customers/erasures/<int:pk>/",
        customers.CustomerErasureView.as_view(),
        name="customer-erasure",
    ),
    path(
        "customers/<int:pk>/portability.json",
        customers.CustomerPortabilityView.as_view(),
        name="customer-portability",
    ),
    path(
        "customers/<int:pk>/explanations/",
        explanations.CustomerExplainView.as_view(),
        name="customer-explain",
    ),
    path("segments/", segments.SegmentListView.as_view(), name="segment-list"),
    path("segments/new/", segments.SegmentBuilderView.as_view(), name="segment-create"),
    path("segments/<int:pk>/", segments.SegmentDetailView.as_view(), name="segment-detail"),
    path("segments/<int:pk>/edit/", segments.SegmentBuilderView.as_view(), name="segment-edit"),
    path("segments/<int:pk>/count/", segments.SegmentCountView.as_view(), name="segment-count"),
    path("models/", models.ModelListView.as_view(), name="model-list"),
    path("models/new/", models.TrainingRunCreateView.as_view(), name="model-create"),
    path("models/<int:pk>/", models.TrainingRunDetailView.as_view(), name="model-detail"),
    path("models/<int:pk>/score/", models.ScoringRunCreateView.as_view(), name="model-score"),
    path("models/<int:pk>/retrain/", models.TrainingRunRetrainView.as_view(), name="model-retrain"),
    path("models/<int:pk>/promote/", models.ModelPromoteView.as_view(), name="model-promote"),
    path("models/<int:pk>/rollback/", models.ModelRollbackView.as_view(), name="model-rollback"),
    path("models/<int:pk>/history/", models.ModelHistoryView.as_view(), name="model-history"),
    path("models/<int:pk>/drift/", models.DriftCheckView.as_view(), name="model-drift"),
    path("models/<int:pk>/compare/", models.ModelCompareView.as_view(), name="model-compare"),
    path(
        "models/<int:pk>/explanations/",
        explanations.ModelExplainView.as_view(),
        name="model-explain",
    ),
    path(
        "models/scores/<int:pk>/",
        models.ScoringRunDetailView.as_view(),
        name="model-scoring-detail",
    ),
    path(
        "models/scores/<int:pk>/audience-diversity/",
        recommendations.AudienceDiversityView.as_view(),
        name="model-audience-diversity",
    ),
    path(
        "models/scores/<int:pk>/audience-diversity/compute/",
        recommendations.AudienceDiversityComputeView.as_view(),
        name="model-audience-diversity-compute",
    ),
    path(
        "recommendations/",
        recommendations.RecommendationListView.as_view(),
        name="recommendation-list",
    ),
    path(
        "recommendations/new/",
        recommendations.RecommendationCreateView.as_view(),
        name="recommendation-create",
    ),
    path(
        "recommendations/<int:pk>/",
        recommendations.RecommendationDetailView.as_view(),
        name="recommendation-detail",
    ),
    path("campaigns/plans/", plans.PlanListView.as_view(), name="plan-list"),
    path("campaigns/plans/new/", plans.PlanCreateView.as_view(), name="plan-create"),
    path("campaigns/plans/<int:pk>/", plans.PlanDetailView.as_view(), name="plan-detail"),
    path("campaigns/plans/<int:pk>/replan/", plans.PlanReplanView.as_view(), name="plan-replan"),
    path("campaigns/plans/<int:pk>/actuals/", plans.PlanActualsView.as_view(), name="plan-actuals"),
    path("campaigns/plans/<int:pk>/uplift/", plans.PlanUpliftView.as_view(), name="plan-uplift"),
    path("audiences/", audiences.AudienceListView.as_view(), name="audience-list"),
    path("audiences/new/", audiences.AudienceBuilderView.as_view(), name="audience-create"),
    path("audiences/<int:pk>/", audiences.AudienceDetailView.as_view(), name="audience-detail"),
    path(
        "audiences/<int:pk>/freeze/", audiences.AudienceFreezeView.as_view(), name="audience-freeze"
    ),
    path("audiences/<int:pk>/count/", audiences.AudienceCountView.as_view(), name="audience-count"),
    path(
        "audiences/<int:pk>/export/", audiences.AudienceExportView.as_view(), name="audience-export"
    ),
    path(
        "audiences/<int:pk>/results/",
        audiences.AudienceResultsView.as_view(),
        name="audience-results",
    ),
    path("exports/", audiences.ExportListView.as_view(), name="export-list"),
    path(
        "exports/<int:pk>/download/", audiences.ExportDownloadView.as_view(), name="export-download"
    ),
    path("jobs/", jobs.JobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>/", jobs.JobDetailView.as_view(), name="job-detail"),
]
