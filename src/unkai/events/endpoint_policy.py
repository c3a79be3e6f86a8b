"""Where a topic's HTTP(S) subscriptions may deliver.

A subscription makes the platform send requests to a URL its subscriber chose. On a platform
that accepts AWS calls from other machines (signatures checked), that would let any key holder
reach addresses only the platform can: loopback services, the private network, a cloud's
metadata endpoint (SNS itself guards this with its confirmation handshake, which unkai does not
have yet). So there, endpoints resolving to loopback, private, link-local or otherwise
non-global addresses are refused, at subscribe time and again at each delivery (the name may
resolve differently later). A platform that only answers its own machine allows them: that is
how local pipelines and the tests use HTTP subscriptions.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from unkai.errors import InvalidRequest


class EndpointPolicy:
    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def check(self, url: str) -> None:
        """Raises InvalidRequest (SNS's InvalidParameter) for a URL this platform may not
        deliver to."""
        if self.allow_private:
            return
        host = urlsplit(url).hostname or ""
        for address in await _addresses(host):
            if not address.is_global:
                raise InvalidRequest(
                    f"Invalid parameter: Endpoint {url!r} resolves to {address}, which is not a "
                    "public address; this platform accepts remote AWS calls, so it delivers "
                    "only to public addresses",
                    code="InvalidParameter",
                    hint="run the platform on loopback (or with --aws-auth off) to deliver "
                    "to local endpoints",
                )


async def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except socket.gaierror:
        raise InvalidRequest(
            f"Invalid parameter: Endpoint host {host!r} does not resolve",
            code="InvalidParameter",
        ) from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]
