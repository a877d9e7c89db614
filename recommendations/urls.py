from django.urls import path

from recommendations.apis import experiments, model_versions, serving

urlpatterns = [
    # serving first: the hot paths resolve after the fewest patterns
    path(
        "customers/<str:customer_id>/recommendations",
        serving.CustomerRecommendationsApi.as_view(),
        name="customer-recommendations",
    ),
    path("items/<str:item_id>/similar", serving.SimilarItemsApi.as_view(), name="similar-items"),
    path("recommendations/popular", serving.PopularApi.as_view(), name="popular"),
    path("recommendations/trending", serving.TrendingApi.as_view(), name="trending"),
    path("recommendations/session", serving.SessionRecommendationsApi.as_view(), name="session"),
    path("recommendations:batch", serving.BatchRecommendationsApi.as_view(), name="recommendations-batch"),
    # models and training
    path("models", model_versions.ModelListApi.as_view(), name="models"),
    path("models:train", model_versions.ModelTrainApi.as_view(), name="models-train"),
    path("models:rollback", model_versions.ModelRollbackApi.as_view(), name="models-rollback"),
    path("models/<int:version>:promote", model_versions.ModelPromoteApi.as_view(), name="model-promote"),
    path("models/<int:version>", model_versions.ModelDetailApi.as_view(), name="model"),
    path("jobs", model_versions.JobListApi.as_view(), name="jobs"),
    path("jobs/<uuid:job_id>", model_versions.JobDetailApi.as_view(), name="job"),
    # routing and experiments
    path("scenarios", experiments.ScenarioListApi.as_view(), name="scenarios"),
    path("scenarios/<str:key>", experiments.ScenarioDetailApi.as_view(), name="scenario"),
    path("experiments", experiments.ExperimentListApi.as_view(), name="experiments"),
    path("experiments/<int:experiment_id>:start", experiments.ExperimentStartApi.as_view(), name="experiment-start"),
    path("experiments/<int:experiment_id>:stop", experiments.ExperimentStopApi.as_view(), name="experiment-stop"),
    path(
        "experiments/<int:experiment_id>/results",
        experiments.ExperimentResultsApi.as_view(),
        name="experiment-results",
    ),
    path("experiments/<int:experiment_id>", experiments.ExperimentDetailApi.as_view(), name="experiment"),
]
