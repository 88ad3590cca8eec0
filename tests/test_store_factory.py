"""Choosing the metadata backend from TAMS_METADATA_URL."""

from __future__ import annotations

import pytest

from stores.factory import UnsupportedStoreUrl, open_metadata_store, vast_store_from_url
from stores.vast import VastMetadataStore
from tams.settings import Settings


def test_a_vast_url_names_endpoint_bucket_and_schema_and_takes_keys_from_the_url_or_settings() -> None:
    store = vast_store_from_url("vast://AK:S%2FK@vast.example:9090/media-bucket/tams?tls=true", Settings())
    assert isinstance(store, VastMetadataStore)
    assert (store._bucket, store._schema) == ("media-bucket", "tams")
    connect = store._session_factory
    assert connect.keywords == {"endpoint": "https://vast.example:9090", "access": "AK", "secret": "S/K",
                                "timeout": 30.0}

    from_settings = vast_store_from_url("vast://vast.example/b/s", Settings(vast_access_key="A", vast_secret_key="S"))
    assert from_settings._session_factory.keywords["endpoint"] == "http://vast.example"
    assert (from_settings._session_factory.keywords["access"], from_settings._session_factory.keywords["secret"]) == (
        "A", "S")


@pytest.mark.parametrize("url", ["vast://host/only-bucket", "vast:///b/s", "vast://host/b/s/extra"])
def test_a_vast_url_without_host_bucket_and_schema_is_refused(url: str) -> None:
    with pytest.raises(UnsupportedStoreUrl):
        vast_store_from_url(url, Settings(vast_access_key="A", vast_secret_key="S"))


def test_a_vast_url_without_keys_is_refused() -> None:
    with pytest.raises(UnsupportedStoreUrl, match="access key"):
        vast_store_from_url("vast://host/b/s", Settings())


async def test_an_unknown_scheme_is_refused_with_the_supported_ones() -> None:
    with pytest.raises(UnsupportedStoreUrl, match="sqlite://, postgresql:// and vast://"):
        await open_metadata_store(Settings(metadata_url="mysql://host/db"))
