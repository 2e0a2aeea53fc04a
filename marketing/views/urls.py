from django.urls import path

from marketing.views import audiences, customers, jobs, models, overview, segments, uploads

urlpatterns = [
    path("", overview.OverviewView.as_view(), name="overview"),
    path("demo-data/", overview.DemoDataView.as_view(), name="overview-demo"),
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
    path("segments/", segments.SegmentListView.as_view(), name="segment-list"),
    path("segments/new/", segments.SegmentBuilderView.as_view(), name="segment-create"),
    path("segments/<int:pk>/", segments.SegmentDetailView.as_view(), name="segment-detail"),
    path("segments/<int:pk>/edit/", segments.SegmentBuilderView.as_view(), name="segment-edit"),
    path("models/", models.ModelListView.as_view(), name="model-list"),
    path("models/new/", models.TrainingRunCreateView.as_view(), name="model-create"),
    path("models/<int:pk>/", models.TrainingRunDetailView.as_view(), name="model-detail"),
    path("models/<int:pk>/score/", models.ScoringRunCreateView.as_view(), name="model-score"),
    path(
        "models/scores/<int:pk>/",
        models.ScoringRunDetailView.as_view(),
        name="model-scoring-detail",
    ),
    path("audiences/", audiences.AudienceListView.as_view(), name="audience-list"),
    path("audiences/new/", audiences.AudienceBuilderView.as_view(), name="audience-create"),
    path("audiences/<int:pk>/", audiences.AudienceDetailView.as_view(), name="audience-detail"),
    path("audiences/<int:pk>/freeze/", audiences.AudienceFreezeView.as_view(),
         name="audience-freeze"),
    path("audiences/<int:pk>/export/", audiences.AudienceExportView.as_view(),
         name="audience-export"),
    path("exports/", audiences.ExportListView.as_view(), name="export-list"),
    path("exports/<int:pk>/download/", audiences.ExportDownloadView.as_view(),
         name="export-download"),
    path("jobs/", jobs.JobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>/", jobs.JobDetailView.as_view(), name="job-detail"),
]
