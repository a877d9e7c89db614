from django.urls import path

from recommendations import apis

urlpatterns = [
    path("models", apis.ModelListApi.as_view(), name="models"),
    path("models:train", apis.ModelTrainApi.as_view(), name="models-train"),
    path("models:rollback", apis.ModelRollbackApi.as_view(), name="models-rollback"),
    path("models/<int:version>:promote", apis.ModelPromoteApi.as_view(), name="model-promote"),
    path("models/<int:version>", apis.ModelDetailApi.as_view(), name="model"),
    path("jobs", apis.JobListApi.as_view(), name="jobs"),
    path("jobs/<uuid:job_id>", apis.JobDetailApi.as_view(), name="job"),
]
