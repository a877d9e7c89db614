from django.urls import path

from tenants.apis import SettingsApi, WhoAmIApi

urlpatterns = [
    path("whoami", WhoAmIApi.as_view(), name="whoami"),
    path("settings", SettingsApi.as_view(), name="settings"),
]
