"""Verify the direct-routing cluster: table, VIP, ARP settings, boot units, and traffic."""

import pytest

import lvsprobe

VIP, PORT = "198.18.0.145", 80
DIRECTOR_EXT = "198.18.0.144"
REAL_SERVERS = {"rs1": "198.18.1.132", "rs2": "198.18.1.133"}


@pytest.fixture(scope="module")
def director():
    return lvsprobe.node("director")


@pytest.fixture(scope="module")
def client():
    return lvsprobe.node("client")


def test_ipvs_table_is_the_inventory(director):
    assert lvsprobe.ipvs_lines(director) == {
        f"-A -t {VIP}:{PORT} -s rr",
        *(f"-a -t {VIP}:{PORT} -r {address}:{PORT} -g -w 1" for address in REAL_SERVERS.values()),
    }
    (header, rules), table = lvsprobe.saved_and_running_table(director)
    assert header == "# ipvsadm.rules" and sorted(rules) == table and lvsprobe.in_restore_order(rules), rules


def test_director_holds_the_vip(director):
    # not its own address: the role added it, on the interface that routes it (lvs-ext)
    ext = lvsprobe.device_of(director, DIRECTOR_EXT)
    assert f"inet {VIP}/32 " in director.check_output(f"ip -o -4 addr show dev {ext}")
    assert director.service("lvs-director").is_enabled
    for conf in ("all", "default", "eth0", "eth1"):
        assert lvsprobe.sysctl(director, f"net.ipv4.conf.{conf}.send_redirects") == "0", conf


@pytest.mark.parametrize("name", sorted(REAL_SERVERS))
def test_real_server_holds_the_vip_on_lo_and_hides_it(name):
    rs = lvsprobe.node(name)
    assert f"inet {VIP}/32 " in rs.check_output("ip -o -4 addr show dev lo")
    # all, and the interface holding the address the service lists
    for conf in ("all", lvsprobe.device_of(rs, REAL_SERVERS[name])):
        assert lvsprobe.sysctl(rs, f"net.ipv4.conf.{conf}.arp_ignore") == "1", conf
        assert lvsprobe.sysctl(rs, f"net.ipv4.conf.{conf}.arp_announce") == "2", conf
    # no NAT here: the real servers keep their own routes
    assert rs.check_output("ip -4 route show default") == ""
    assert rs.service("lvs-realserver").is_enabled


def test_traffic_reaches_every_real_server(client, director):
    answers = lvsprobe.send_requests(client, VIP, PORT, 20)
    assert not [a for a in answers if a[1].startswith("FAILED")], answers
    assert {answer for _source, answer in answers} == set(REAL_SERVERS), answers
    # the client learnt the VIP's MAC address from the director, not from a real server that
    # also sits on lvs-ext (arp_ignore/arp_announce at work)
    neigh = client.check_output(f"ip neigh show {VIP}")
    ext = lvsprobe.device_of(director, DIRECTOR_EXT)
    assert director.file(f"/sys/class/net/{ext}/address").content_string.strip() in neigh, neigh
