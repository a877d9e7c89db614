"""Dashboard routes, under /dashboard/ on a store's host."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from dashboard import experiment_views, settings_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page=reverse_lazy("dashboard:login")), name="logout"),
    path(
        "password-reset/",
        views.PasswordResetView.as_view(
            template_name="dashboard/password_reset.html",
            email_template_name="dashboard/password_reset_email.txt",
            subject_template_name="dashboard/password_reset_subject.txt",
            success_url=reverse_lazy("dashboard:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="dashboard/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="dashboard/password_reset_confirm.html",
            success_url=reverse_lazy("dashboard:login"),
        ),
        name="password_reset_confirm",
    ),
    path("items/", views.items, name="items"),
    path("items/<str:item_id>/", views.item, name="item"),
    path("customers/", views.customers, name="customers"),
    path("customers/<str:customer_id>/", views.customer, name="customer"),
    path("models/", views.models, name="models"),
    path("models/train/", views.model_train, name="model-train"),
    path("models/rollback/", views.model_rollback, name="model-rollback"),
    path("models/<int:version>/promote/", views.model_promote, name="model-promote"),
    path("jobs/<str:job_id>/progress/", views.job_progress, name="job-progress"),
    path("keys/", views.api_keys, name="keys"),
    path("keys/<str:key_id>/revoke/", views.api_key_revoke, name="key-revoke"),
    path("keys/<str:key_id>/signing-secret/", views.api_key_signing_secret, name="key-signing-secret"),
    path("experiments/", experiment_views.experiments, name="experiments"),
    path("experiments/new/", experiment_views.experiment_new, name="experiment-new"),
    path("experiments/<int:experiment_id>/", experiment_views.experiment, name="experiment"),
    path("experiments/<int:experiment_id>/start/", experiment_views.experiment_begin, name="experiment-start"),
    path("experiments/<int:experiment_id>/stop/", experiment_views.experiment_end, name="experiment-stop"),
    path("scenarios/<str:key>/delete/", experiment_views.scenario_remove, name="scenario-delete"),
    path("settings/", settings_views.store_settings, name="settings"),
    path("team/", settings_views.team, name="team"),
    path("team/members/<int:membership_id>/role/", settings_views.member_role, name="member-role"),
    path("team/members/<int:membership_id>/remove/", settings_views.member_remove, name="member-remove"),
    path("team/invitations/<int:invitation_id>/revoke/", settings_views.invitation_cancel, name="invitation-revoke"),
    path("join/<str:token>/", settings_views.join, name="join"),
]
