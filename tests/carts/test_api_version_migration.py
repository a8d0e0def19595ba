"""Migration carts 0007: the Shopify API version, until now a free-text
parameter, becomes the store's field with the supported versions as choices;
a supported one is kept, anything else is dropped (the store then uses
2026-04), and migrating back puts the chosen one among the parameters again."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("carts", "0006_store_downloads_rate_window_price_hold")]
AFTER = [("carts", "0007_externalstore_api_version_choice")]


@pytest.mark.django_db(transaction=True)
def test_the_version_parameter_moves_into_the_choice_field_and_back():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("carts", "ExternalStore")
    for code, version in [("kept", "2026-01"), ("retired", "2024-01"), ("none", None)]:
        params = {"location_id": "gid://shopify/Location/1"} | ({"api_version": version} if version else {})
        old.objects.create(code=code, name=code, platform="shopify", url="https://x.example", params=params)
    try:
        executor.loader.build_graph()
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps.get_model("carts", "ExternalStore")
        rows = {s.code: (s.api_version, s.params) for s in new.objects.all()}
        assert rows == {"kept": ("2026-01", {"location_id": "gid://shopify/Location/1"}),
                        "retired": ("", {"location_id": "gid://shopify/Location/1"}),
                        "none": ("", {"location_id": "gid://shopify/Location/1"})}
        executor.loader.build_graph()
        executor.migrate(BEFORE)
        back = executor.loader.project_state(BEFORE).apps.get_model("carts", "ExternalStore")
        assert back.objects.get(code="kept").params["api_version"] == "2026-01"
        assert "api_version" not in back.objects.get(code="retired").params
    finally:
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
