from django.urls import path

from catalog import apis

urlpatterns = [
    path("items", apis.ItemListApi.as_view(), name="items"),
    path("items:batch", apis.ItemBatchApi.as_view(), name="items-batch"),
    path("items/<str:item_id>", apis.ItemDetailApi.as_view(), name="item"),
    path("customers", apis.CustomerListApi.as_view(), name="customers"),
    path("customers:batch", apis.CustomerBatchApi.as_view(), name="customers-batch"),
    path("customers/<str:customer_id>", apis.CustomerDetailApi.as_view(), name="customer"),
    path("customers/<str:customer_id>/events", apis.CustomerEventsApi.as_view(), name="customer-events"),
    path("events", apis.EventCreateApi.as_view(), name="events"),
]
