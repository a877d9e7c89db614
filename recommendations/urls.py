from django.urls import path

from recommendations import apis, experiment_apis, serving_apis

urlpatterns = [
    # serving first: the hot paths resolve after the fewest patterns
    path(
        "customers/<str:customer_id>/recommendations",
        serving_apis.CustomerRecommendationsApi.as_view(),
        name="customer-recommendations",
    ),
    path("items/<str:item_id>/similar", serving_apis.SimilarItemsApi.as_view(), name="similar-items"),
    path("recommendations/popular", serving_apis.PopularApi.as_view(), name="popular"),
    path("recommendations/trending", serving_apis.TrendingApi.as_view(), name="trending"),
    path("recommendations/session", serving_apis.SessionRecommendationsApi.as_view(), name="session"),
    path("recommendations:batch", serving_apis.BatchRecommendationsApi.as_view(), name="recommendations-batch"),
    # models and training
    path("models", apis.ModelListApi.as_view(), name="models"),
    path("models:train", apis.ModelTrainApi.as_view(), name="models-train"),
    path("models:rollback", apis.ModelRollbackApi.as_view(), name="models-rollback"),
    path("models/<int:version>:promote", apis.ModelPromoteApi.as_view(), name="model-promote"),
    path("models/<int:version>", apis.ModelDetailApi.as_view(), name="model"),
    path("jobs", apis.JobListApi.as_view(), name="jobs"),
    path("jobs/<uuid:job_id>", apis.JobDetailApi.as_view(), name="job"),
    # routing and experiments
    path("scenarios", experiment_apis.ScenarioListApi.as_view(), name="scenarios"),
    path("scenarios/<str:key>", experiment_apis.ScenarioDetailApi.as_view(), name="scenario"),
    path("experiments", experiment_apis.ExperimentListApi.as_view(), name="experiments"),
    path(
        "experiments/<int:experiment_id>:start", experiment_apis.ExperimentStartApi.as_view(), name="experiment-start"
    ),
    path("experiments/<int:experiment_id>:stop", experiment_apis.ExperimentStopApi.as_view(), name="experiment-stop"),
    path(
        "experiments/<int:experiment_id>/results",
        experiment_apis.ExperimentResultsApi.as_view(),
        name="experiment-results",
    ),
    path("experiments/<int:experiment_id>", experiment_apis.ExperimentDetailApi.as_view(), name="experiment"),
]
