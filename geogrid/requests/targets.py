"""Where a webhook may be sent: https, to public addresses only (issue 14, SSRF).

A webhook makes the server send a POST to a URL an admin chose, and the delivery log reports
how it went: without limits that is a way to reach, and to scan, what only the server can
reach — ``127.0.0.1``, the intranet, a cloud's metadata service at ``169.254.169.254``, the
API itself. So a target is checked when it is registered (or switched back on) and again at
every delivery, because DNS may answer differently by then (OWASP, "Server-Side Request
Forgery Prevention Cheat Sheet": allow-list the scheme, resolve, refuse non-public
addresses, do not follow redirects, and connect to the address that was checked):

* the scheme is ``https``;
* the host resolves, and **every** address it resolves to is public: :func:`is_public`,
  i.e. :attr:`ipaddress.IPv4Address.is_global` and not multicast, with the IPv4 address
  inside an IPv4-mapped (``::ffff:a.b.c.d``), 6to4 (``2002::/16``) or NAT64
  (``64:ff9b::/96``) IPv6 address checked as well. One private address among public ones
  refuses the target: a resolver that answers both would otherwise pick which one is used;
* a host in one of the numeric forms ``socket.inet_aton`` accepts (``0x7f000001``,
  ``2130706433``, ``017700000001``, ``127.1``) is read as the address it stands for, never
  sent to a resolver (the C library's ``getaddrinfo`` reads them the same way);
* at delivery the connection goes to the address just checked (:class:`Target`
  ``.request_url`` holds the address; ``Host`` and the TLS server name — SNI, and the name the
  certificate is verified against — stay the URL's host), so a DNS answer that changes
  between the check and the connect (DNS rebinding) is never used; redirects are not
  followed (``geogrid.requests.webhooks``).

``GEOGRID_WEBHOOK_ALLOW_PRIVATE=true`` (tests, closed networks) allows ``http`` and any
address; deliveries are still pinned to the address resolved for them.

The resolver is a parameter (:data:`Resolver`, default :func:`system_resolver`) so that tests
make ``hooks.example.org`` resolve where they need without a network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from geogrid.errors import InvalidInput

__all__ = ["Resolver", "Target", "check_target", "is_public", "system_resolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: ``resolve(host, port)``: the addresses (text) a host name stands for; raises ``OSError``
#: (``socket.gaierror``) when it stands for none.
Resolver = Callable[[str, int], Sequence[str]]

_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052, the well-known prefix
_ALLOW_SETTING: Final = "GEOGRID_WEBHOOK_ALLOW_PRIVATE"


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives for ``host`` (TCP), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(ip.packed[-4:])
    return None


def is_public(ip: IPAddress) -> bool:
    """Whether ``ip`` is a public unicast address (and so is any IPv4 address it carries).

    >>> [is_public(ipaddress.ip_address(a)) for a in ("93.184.216.34", "127.0.0.1")]
    [True, False]
    >>> is_public(ipaddress.ip_address("::ffff:169.254.169.254"))
    False
    """
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return is_public(inner)
    return True


def _kind(ip: IPAddress) -> str:
    """What a non-public address is, for the message."""
    if isinstance(ip, ipaddress.IPv6Address) and _embedded_ipv4(ip) is not None:
        inner = _embedded_ipv4(ip)
        assert inner is not None
        return f"carries {inner}, {_kind(inner)}"
    for name in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    return "not global"


def _numeric_host(host: str) -> IPAddress | None:
    """The address a literal host stands for: IPv4 or IPv6 text, or one of the old numeric
    IPv4 forms (hex, one integer, octal, shortened) that ``inet_aton`` reads."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not host[0].isdigit():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


@dataclass(frozen=True)
class Target:
    """A checked webhook target.

    ``address`` is what the delivery connects to (``None`` only when the target was checked
    without resolving: registration under ``allow_private``). :meth:`request` gives what to
    send so that the connection goes to ``address`` while ``Host`` and the TLS server name
    stay the URL's host.
    """

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]

    @property
    def address(self) -> IPAddress | None:
        return self.addresses[0] if self.addresses else None

    def request(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        """``(url, headers, extensions)`` for the HTTP client: the URL with the checked
        address in place of the host, the original ``Host``, and the original host as the
        TLS server name (httpx's ``sni_hostname`` request extension; the certificate is
        verified against it)."""
        if self.address is None:
            return self.url, {}, {}
        original = httpx.URL(self.url)
        pinned = original.copy_with(host=str(self.address))
        headers = {"Host": original.netloc.decode("ascii")}
        extensions: dict[str, Any] = {}
        if self.scheme == "https":
            extensions["sni_hostname"] = self.host
        return str(pinned), headers, extensions


def check_target(
    url: Any,
    *,
    allow_private: bool = False,
    resolve: Resolver | None = None,
    pin: bool = True,
) -> Target:
    """Check a webhook URL; return it with the addresses it may be delivered to.

    Raises :class:`InvalidInput` (field ``url``) for a URL that is not ``https`` (or
    ``http`` with ``allow_private``), has no host, does not resolve, or resolves to any
    address that is not public (unless ``allow_private``). ``pin`` (deliveries) resolves
    the host even when ``allow_private`` leaves nothing to check, to connect to that address;
    registration under ``allow_private`` resolves nothing (on a closed network the receiver
    may not be in DNS yet).

    >>> check_target("https://93.184.216.34/hook").address
    IPv4Address('93.184.216.34')
    """
    if not isinstance(url, str):
        raise InvalidInput("url must be a string", field="url")
    schemes = ("https", "http") if allow_private else ("https",)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidInput(f"url is not a valid URL: {exc}", field="url") from None
    if parsed.scheme not in schemes:
        raise InvalidInput(
            "url must be an https URL"
            + ("" if allow_private else f" (http and private addresses need {_ALLOW_SETTING})"),
            field="url",
        )
    # raw_host: the ASCII (IDNA) form, as the HTTP client would hand it to the resolver.
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise InvalidInput("url has no host", field="url")
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    literal = _numeric_host(host)
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    elif allow_private and not pin:
        addresses = ()
    else:
        addresses = _resolve(host, port, resolve or system_resolver)
    if not allow_private:
        for ip in addresses:
            if not is_public(ip):
                what = f"{ip} is" if literal is not None else f"{host} resolves to {ip},"
                raise InvalidInput(
                    f"url: {what} not a public address ({_kind(ip)}); webhooks go to public "
                    f"addresses only ({_ALLOW_SETTING} allows others)",
                    field="url",
                )
    return Target(url=url, scheme=parsed.scheme, host=host, port=port, addresses=addresses)


def _resolve(host: str, port: int, resolve: Resolver) -> tuple[IPAddress, ...]:
    try:
        answers = list(resolve(host, port))
    except (OSError, UnicodeError) as exc:
        raise InvalidInput(f"url: the host {host} does not resolve ({exc})", field="url") from None
    addresses: list[IPAddress] = []
    for text in answers:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise InvalidInput(
                f"url: the host {host} resolves to {text!r}, not an address", field="url"
            ) from None
        # An IPv4-mapped answer is connected to as the IPv4 address it maps.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise InvalidInput(f"url: the host {host} does not resolve", field="url")
    return tuple(addresses)
