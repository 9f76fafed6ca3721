"""Region -> host exactly as the official SDK resolves it; explicit endpoints are validated."""

from __future__ import annotations

import pytest

from reconciler.adapters.vod.endpoints import (
    DEDICATED_REGIONS,
    SPECIAL_HOSTS,
    Endpoint,
    is_loopback,
    parse_endpoint,
    region_host,
    resolve_endpoint,
)
from reconciler.errors import ConfigError


def _sdk_host(region: str) -> str:
    from alibabacloud_tea_openapi.models import Config
    from alibabacloud_vod20170321.client import Client

    client = Client(Config(access_key_id="id", access_key_secret="secret", region_id=region))
    return str(client._endpoint)


def test_default_is_shanghai_over_https() -> None:
    endpoint = resolve_endpoint()
    assert endpoint == Endpoint("https", "vod.cn-shanghai.aliyuncs.com")
    assert endpoint.base_url == str(endpoint) == "https://vod.cn-shanghai.aliyuncs.com"


def test_our_map_is_the_sdks_map() -> None:
    from alibabacloud_tea_openapi.models import Config
    from alibabacloud_vod20170321.client import Client

    sdk_map = Client(Config(access_key_id="i", access_key_secret="s", region_id="cn-shanghai"))
    regions = set(sdk_map._endpoint_map)
    assert regions == set(SPECIAL_HOSTS) | DEDICATED_REGIONS
    for region in sorted(regions):
        assert region_host(region) == _sdk_host(region), region


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("cn-hangzhou", "vod.cn-shanghai.aliyuncs.com"),
        ("ap-southeast-1", "vod.ap-southeast-1.aliyuncs.com"),
        ("cn-qingdao", "vod.aliyuncs.com"),
        ("ap-south-1", "vod.ap-south-1.aliyuncs.com"),  # not in the map: the rule applies
    ],
)
def test_region_hosts(region: str, host: str) -> None:
    assert region_host(region) == host
    assert _sdk_host(region) == host


def test_vpc_network_follows_the_rule() -> None:
    assert region_host("cn-shanghai", network="vpc") == "vod-vpc.cn-shanghai.aliyuncs.com"
    assert region_host("cn-shanghai", network="public") == "vod.cn-shanghai.aliyuncs.com"


@pytest.mark.parametrize("region", ["", "CN-Shanghai", "cn shanghai", "cn-shanghai/evil", "a..b"])
def test_bad_region_is_a_config_error(region: str) -> None:
    with pytest.raises(ConfigError):
        resolve_endpoint(region or "x y")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://vod.cn-beijing.aliyuncs.com", Endpoint("https", "vod.cn-beijing.aliyuncs.com")),
        ("https://vod.cn-beijing.aliyuncs.com/", Endpoint("https", "vod.cn-beijing.aliyuncs.com")),
        ("vod.cn-beijing.aliyuncs.com", Endpoint("https", "vod.cn-beijing.aliyuncs.com")),
        ("https://VOD.example.com:443", Endpoint("https", "vod.example.com")),
        ("https://vod.example.com:8443", Endpoint("https", "vod.example.com", 8443)),
        ("http://127.0.0.1:8080", Endpoint("http", "127.0.0.1", 8080)),
        ("http://127.9.8.7", Endpoint("http", "127.9.8.7")),
        ("http://localhost:9000", Endpoint("http", "localhost", 9000)),
        ("http://[::1]:9000", Endpoint("http", "::1", 9000)),
    ],
)
def test_explicit_endpoints(value: str, expected: Endpoint) -> None:
    assert resolve_endpoint("eu-central-1", value) == expected
    assert resolve_endpoint(region="eu-central-1", endpoint=value) == expected


def test_ipv6_base_url_is_bracketed() -> None:
    assert parse_endpoint("http://[::1]:9000").base_url == "http://[::1]:9000"


@pytest.mark.parametrize(
    "value",
    [
        "http://vod.cn-shanghai.aliyuncs.com",  # plain http off the machine
        "http://10.0.0.1:8080",
        "http://192.168.1.1",
        "http://localhost.example.com",
        "http://[::2]:80",
        "ftp://vod.cn-shanghai.aliyuncs.com",
        "https://vod.cn-shanghai.aliyuncs.com/path",
        "https://vod.cn-shanghai.aliyuncs.com/?Action=x",
        "https://",
        "https://host:notaport",
        "https://bad_host!.com",
    ],
)
def test_rejected_endpoints(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_endpoint(value)


def test_userinfo_is_rejected_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse_endpoint("https://LTAIkey:TopSecretValue@vod.cn-shanghai.aliyuncs.com")
    assert "TopSecretValue" not in str(info.value)
    assert "TopSecretValue" not in repr(info.value)


def test_plain_http_message_names_the_rule() -> None:
    with pytest.raises(ConfigError) as info:
        parse_endpoint("http://vod.cn-shanghai.aliyuncs.com")
    assert "https" in str(info.value)
    assert "127.0.0.0/8" in str(info.value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("128.0.0.1", False),
        ("example.com", False),
        ("0.0.0.0", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
