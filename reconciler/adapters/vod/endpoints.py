"""Which VOD host to talk to: region -> host as the official SDK maps it, or an explicit URL.

Plain ``http://`` is refused except to loopback addresses: v2 requests carry the signature
(and an STS token) in the URL, which must never cross a network unencrypted.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from reconciler.errors import ConfigError

DEFAULT_REGION = "cn-shanghai"

# The regions alibabacloud-vod20170321's endpoint map sends to a regional host of their own
# (vod-api.md §5.1); every other region follows the rule vod.<region>.aliyuncs.com.
DEDICATED_REGIONS = frozenset(
    {
        "cn-shanghai",
        "cn-beijing",
        "cn-shenzhen",
        "cn-hongkong",
        "ap-southeast-1",
        "ap-northeast-1",
        "ap-southeast-5",
        "us-west-1",
        "eu-central-1",
        "me-central-1",
        "cn-north-2-gov-1",
    }
)
# Region IDs the SDK maps elsewhere: cn-hangzhou shares Shanghai's service, and a list of
# internal or unsupported regions go to the central host.
SPECIAL_HOSTS: dict[str, str] = {"cn-hangzhou": "vod.cn-shanghai.aliyuncs.com"} | dict.fromkeys(
    (
        "ap-northeast-2-pop",
        "ap-southeast-2",
        "ap-southeast-3",
        "cn-beijing-finance-1",
        "cn-beijing-finance-pop",
        "cn-beijing-gov-1",
        "cn-beijing-nu16-b01",
        "cn-chengdu",
        "cn-edge-1",
        "cn-fujian",
        "cn-haidian-cm12-c01",
        "cn-hangzhou-bj-b01",
        "cn-hangzhou-finance",
        "cn-hangzhou-internal-prod-1",
        "cn-hangzhou-internal-test-1",
        "cn-hangzhou-internal-test-2",
        "cn-hangzhou-internal-test-3",
        "cn-hangzhou-test-306",
        "cn-hongkong-finance-pop",
        "cn-huhehaote",
        "cn-huhehaote-nebula-1",
        "cn-qingdao",
        "cn-qingdao-nebula",
        "cn-shanghai-et15-b01",
        "cn-shanghai-et2-b01",
        "cn-shanghai-finance-1",
        "cn-shanghai-inner",
        "cn-shanghai-internal-test-1",
        "cn-shenzhen-finance-1",
        "cn-shenzhen-inner",
        "cn-shenzhen-st4-d01",
        "cn-shenzhen-su18-b01",
        "cn-wuhan",
        "cn-wulanchabu",
        "cn-yushanfang",
        "cn-zhangbei",
        "cn-zhangbei-na61-b01",
        "cn-zhangjiakou-na62-a01",
        "cn-zhengzhou-nebula-1",
        "eu-west-1-oxs",
        "me-east-1",
        "rus-west-1-pop",
        "us-east-1",
    ),
    "vod.aliyuncs.com",
)
_REGION_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Endpoint:
    """Where requests go. ``base_url`` has no path; ``host`` is the Host header value."""

    scheme: str
    host: str
    port: int | None = None

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def __str__(self) -> str:
        return self.base_url


def region_host(region: str, *, network: str | None = None) -> str:
    """The VOD host for a region ID, as the official SDK resolves it."""
    if not _REGION_RE.match(region):
        raise ConfigError(f"invalid region ID {region!r}", hint="for example cn-shanghai")
    if network and network != "public":
        # The SDK's map only covers the public network; VPC hosts always follow the rule.
        if not _REGION_RE.match(network):
            raise ConfigError(f"invalid network {network!r}", hint="use 'public' or 'vpc'")
        return f"vod-{network}.{region}.aliyuncs.com"
    return SPECIAL_HOSTS.get(region, f"vod.{region}.aliyuncs.com")


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_endpoint(value: str) -> Endpoint:
    """An explicit endpoint: ``https://host[:port]``, a bare host, or ``http://`` to loopback.

    Error messages never echo the value itself: it might carry a key pasted by mistake.
    """
    text = value.strip()
    if "@" in text:
        raise ConfigError(
            "invalid endpoint: credentials in the URL are not allowed",
            hint="use ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET",
        )
    if "://" not in text:
        text = f"https://{text}"  # the SDK's Config.endpoint is a bare host name
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigError("invalid endpoint: the host or port cannot be parsed") from None
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme not in ("http", "https"):
        raise ConfigError("invalid endpoint: the scheme must be https (or http to loopback)")
    if not host or (not _HOST_RE.match(host) and not _is_ip(host)):
        raise ConfigError("invalid endpoint: no valid host name")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"invalid endpoint for {host}: VOD is served at '/', give no path or query"
        )
    if scheme == "http" and not is_loopback(host):
        raise ConfigError(
            f"refusing plain http to {host}: signed requests must use https",
            hint="plain http is only allowed to 127.0.0.0/8, ::1 and localhost (the emulator)",
        )
    default_port = 443 if scheme == "https" else 80
    return Endpoint(scheme, host.lower(), None if port in (None, default_port) else port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve_endpoint(
    region: str | None = None, endpoint: str | None = None, *, network: str | None = None
) -> Endpoint:
    """An explicit endpoint wins; otherwise the region's host (default cn-shanghai) over https."""
    if endpoint:
        return parse_endpoint(endpoint)
    return Endpoint("https", region_host(region or DEFAULT_REGION, network=network))
