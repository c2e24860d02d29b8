"""
Tests for numberok.endpoints, the one helper that splits and joins strports
descriptions: Twisted's escapes, moving a port, and telling loopback
endpoints from ones reachable over the network.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.endpoints import _parse as twistedParse

from numberok.endpoints import (endpointWithPort, isLoopbackEndpoint,
                                isLoopbackHost, joinDescription,
                                splitDescription)


@pytest.mark.parametrize("description, loopback", [
    ("tcp:8080:interface=127.0.0.1", True),
    ("tcp:port=8080:interface=localhost", True),
    ("tcp6:8080:interface=\\:\\:1", True),
    ("tcp:8080:50:127.0.0.2", True),
    ("unix:/run/numberok.sock", True),
    ("tcp:8080", False),
    ("8080", False),
    ("tcp:8080:interface=0.0.0.0", False),
    ("tcp:8080:interface=192.168.1.10", False),
    ("ssl:8443:privateKey=k.pem", False),
    ("systemd:domain=INET:index=0", False),
])
def test_loopback_endpoints_are_recognised(description, loopback):
    assert isLoopbackEndpoint(description) is loopback


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("LOCALHOST", True), ("admin.localhost", True),
    ("127.0.0.1", True), ("127.8.9.10", True), ("[::1]", True),
    ("::1", True), ("0.0.0.0", False), ("::", False),
    ("192.168.1.10", False), ("localhost.example.com", False), ("", False),
])
def test_loopback_hosts_are_recognised(host, loopback):
    assert isLoopbackHost(host) is loopback


@pytest.mark.parametrize("description, port, moved", [
    ("tcp:7700", 8000, "tcp:8000"),
    ("tcp:7700:interface=\\:\\:1", 8000, "tcp:8000:interface=\\:\\:1"),
    ("tcp6:interface=\\:\\:1", 8000, "tcp6:8000:interface=\\:\\:1"),
    ("tcp:port=7700:interface=127.0.0.1", 7800,
     "tcp:port=7800:interface=127.0.0.1"),
    ("ssl:7700:privateKey=C\\:\\\\keys\\\\k.pem", 7443,
     "ssl:7443:privateKey=C\\:\\\\keys\\\\k.pem"),
    ("7700", 8000, "tcp:8000"),
])
def test_moving_a_port_keeps_the_other_options_and_their_escapes(
        description, port, moved):
    assert endpointWithPort(description, port) == moved
    # Twisted reads the moved description as the old one with a new port.
    args, kwargs = twistedParse(moved)
    assert str(port) in args or kwargs.get("port") == str(port)


def test_an_escaped_colon_is_part_of_a_value():
    assert splitDescription("tcp:7700:interface=\\:\\:1") == [
        "tcp", "7700", "interface=::1"]
    assert splitDescription("a\\\\:b") == ["a\\", "b"]


parts = st.lists(st.text(), min_size=1, max_size=6)
# Twisted's parser takes ASCII option names only.
asciiParts = st.lists(
    st.text(st.characters(min_codepoint=1, max_codepoint=127)),
    min_size=1, max_size=6)


@given(parts)
def test_split_undoes_join(values):
    assert splitDescription(joinDescription(values)) == values


@given(asciiParts)
def test_split_agrees_with_twisteds_own_parser(values):
    description = joinDescription(values)
    args, kwargs = twistedParse(description)
    ours = splitDescription(description)
    assert [p for p in ours if "=" not in p] == args
    assert dict(p.split("=", 1) for p in ours if "=" in p) == kwargs


def isPort(part):
    return part.isdigit() or part.startswith("port=")


@given(st.sampled_from(["tcp", "tcp6", "ssl"]), parts,
       st.integers(min_value=1, max_value=65535))
def test_moving_a_port_keeps_every_other_option_in_order(kind, options, port):
    description = joinDescription([kind] + options)
    after = splitDescription(endpointWithPort(description, port))
    assert after[0] == kind
    assert str(port) in after or "port=%d" % (port,) in after
    assert [p for p in after[1:] if not isPort(p)] == [
        p for p in options if not isPort(p)]


# -- where the admin page may listen (tap.Options uses the helper) -----------

def test_network_admin_endpoint_without_password_is_refused_with_advice(
        tmp_path):
    from twisted.python import usage

    from numberok import tap
    from numberok.web.auth import hashPassword
    config = str(tmp_path / "numberok.ini")
    with pytest.raises(usage.UsageError) as e:
        tap.Options().parseOptions(["--config", config, "--admin", "tcp:8080"])
    assert "numberok-passwd" in str(e.value)
    tap.Options().parseOptions(
        ["--config", config, "--admin", "tcp:8080:interface=\\:\\:1"])
    with open(config, "a", encoding="utf-8") as f:
        f.write("\n[Admin]\nPasswordHash = %s\n"
                % (hashPassword("x" * 8, 1000),))
    tap.Options().parseOptions(["--config", config, "--admin", "tcp:8080"])


def test_a_peers_host_is_its_address_host_and_local_for_a_unix_socket():
    from twisted.internet.address import IPv4Address, UNIXAddress

    from numberok.endpoints import addressText, hostText
    tcp = IPv4Address("TCP", "10.0.0.7", 40000)
    assert (hostText(tcp), addressText(tcp)) == ("10.0.0.7", "10.0.0.7:40000")
    assert hostText(UNIXAddress(None)) == "local"
