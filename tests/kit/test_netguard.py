"""The SSRF guard: which URLs Tenure will send webhooks (and other messages) to."""

from __future__ import annotations

import pytest

from tenure.kit.errors import InvalidInput
from tenure.kit.netguard import (
    DestinationRefused,
    check_destination,
    check_destination_async,
    check_url_syntax,
)
from tests.receivers import run_async

PUBLIC_IP = "93.184.216.34"


class TestUrlSyntax:
    @pytest.mark.parametrize(
        ("url", "host", "port"),
        [
            ("http://example.com/hook", "example.com", 80),
            ("https://example.com/hook", "example.com", 443),
            ("https://Example.COM:8443/a?b=c", "example.com", 8443),
            ("http://[2001:db8::1]:8080/", "2001:db8::1", 8080),
        ],
    )
    def test_http_and_https_urls_are_accepted(self, url: str, host: str, port: int) -> None:
        assert check_url_syntax(url) == (host, port)

    @pytest.mark.parametrize(
        ("url", "why"),
        [
            ("ftp://example.com/file", "not an http or https URL"),
            ("file:///etc/passwd", "not an http or https URL"),
            ("gopher://example.com:70/", "not an http or https URL"),
            ("example.com/hook", "not an http or https URL"),
            ("http:///hook", "has no host"),
            ("https://", "has no host"),
            ("https://user:secret@example.com/hook", "credentials in the URL are not allowed"),
            ("https://token@example.com/hook", "credentials in the URL are not allowed"),
            ("https://example.com:99999/hook", "is not a valid URL"),
        ],
    )
    def test_other_urls_are_refused_with_the_reason(self, url: str, why: str) -> None:
        with pytest.raises(DestinationRefused) as caught:
            check_url_syntax(url)
        assert why in caught.value.detail
        # An InvalidInput: the API answers 422 naming the field.
        assert isinstance(caught.value, InvalidInput)
        assert caught.value.status == 422
        assert caught.value.extra == {"field": "url"}

    def test_the_error_names_the_field_it_was_given(self) -> None:
        with pytest.raises(DestinationRefused) as caught:
            check_url_syntax("ftp://example.com", field="webhook_url")
        assert caught.value.extra == {"field": "webhook_url"}

    def test_syntax_errors_come_before_any_dns_lookup(self) -> None:
        # A refused scheme is reported as such even when the host would not resolve.
        with pytest.raises(DestinationRefused, match="not an http or https URL"):
            check_destination("ftp://hooks.example.invalid/", allow_private=True)


PRIVATE = [
    pytest.param("http://127.0.0.1:8080/hook", "loopback", id="loopback-v4"),
    pytest.param("http://127.1.2.3/hook", "loopback", id="loopback-v4-range"),
    pytest.param("http://[::1]/hook", "loopback", id="loopback-v6"),
    pytest.param("http://localhost/hook", "loopback", id="localhost-name"),
    pytest.param("http://[::ffff:127.0.0.1]/hook", "loopback", id="v4-mapped-loopback"),
    pytest.param("http://2130706433/hook", "loopback", id="decimal-loopback"),
    pytest.param("http://10.1.2.3/hook", "private", id="10/8"),
    pytest.param("http://172.16.0.10/hook", "private", id="172.16/12"),
    pytest.param("http://192.168.1.20/hook", "private", id="192.168/16"),
    pytest.param("http://[fd12:3456::1]/hook", "private", id="ula-v6"),
    pytest.param(
        "http://169.254.169.254/latest/meta-data/", "cloud metadata", id="metadata-link-local"
    ),
    # Alibaba Cloud's metadata service lives in the shared (carrier-grade NAT) range.
    pytest.param("http://100.100.100.200/latest/meta-data/", "address", id="metadata-100.64/10"),
    pytest.param("http://100.64.0.1/hook", "address", id="shared-100.64/10"),
    pytest.param("http://224.0.0.1/hook", "reserved", id="multicast"),
    pytest.param("http://0.0.0.0:8000/hook", "address", id="unspecified"),
]


class TestDestination:
    @pytest.mark.parametrize(("url", "kind"), PRIVATE)
    def test_private_destinations_are_refused_by_default(self, url: str, kind: str) -> None:
        with pytest.raises(DestinationRefused) as caught:
            check_destination(url, allow_private=False)
        detail = caught.value.detail
        assert kind in detail
        assert "resolves to" in detail
        # The message tells the operator how to allow it on purpose.
        assert "TENURE_ALLOW_PRIVATE_DESTINATIONS" in detail

    @pytest.mark.parametrize(("url", "kind"), PRIVATE)
    def test_private_destinations_are_accepted_when_allowed(self, url: str, kind: str) -> None:
        addresses = check_destination(url, allow_private=True)
        assert addresses

    def test_the_refusal_names_the_address_the_host_resolves_to(self) -> None:
        with pytest.raises(DestinationRefused) as caught:
            check_destination("http://localhost:9000/x", allow_private=False)
        assert caught.value.detail.startswith("localhost resolves to ")
        assert "127.0.0.1" in caught.value.detail or "::1" in caught.value.detail

    @pytest.mark.parametrize("allow_private", [False, True])
    def test_a_public_literal_ip_is_accepted_without_dns(self, allow_private: bool) -> None:
        assert check_destination(f"https://{PUBLIC_IP}/hook", allow_private=allow_private) == [
            PUBLIC_IP
        ]
        assert check_destination(f"http://{PUBLIC_IP}:8080/", allow_private=allow_private) == [
            PUBLIC_IP
        ]

    @pytest.mark.parametrize("allow_private", [False, True])
    def test_a_host_that_does_not_resolve_is_refused(self, allow_private: bool) -> None:
        with pytest.raises(DestinationRefused) as caught:
            check_destination("https://hooks.example.invalid/tenure", allow_private=allow_private)
        assert "hooks.example.invalid does not resolve" in caught.value.detail

    def test_credentials_are_refused_even_for_private_destinations(self) -> None:
        with pytest.raises(DestinationRefused, match="credentials"):
            check_destination("http://admin:admin@127.0.0.1/", allow_private=True)


class TestDestinationAsync:
    """The sender checks again at send time without blocking its event loop."""

    def test_same_verdicts_as_the_blocking_check(self) -> None:
        async def check(url: str, allow_private: bool) -> list[str] | str:
            try:
                return await check_destination_async(url, allow_private=allow_private)
            except DestinationRefused as exc:
                return exc.detail

        cases = [
            (f"https://{PUBLIC_IP}/hook", False),
            ("http://127.0.0.1/hook", False),
            ("http://127.0.0.1/hook", True),
            ("http://169.254.169.254/", False),
            ("https://hooks.example.invalid/", True),
            ("ftp://example.com/", True),
        ]

        async def all_cases() -> list[list[str] | str]:
            return [await check(url, allow) for url, allow in cases]

        got = run_async(all_cases())

        expected: list[list[str] | str] = []
        for url, allow in cases:
            try:
                expected.append(check_destination(url, allow_private=allow))
            except DestinationRefused as exc:
                expected.append(exc.detail)
        assert [type(g) for g in got] == [list, str, list, str, str, str]
        assert got == expected
