"""Verify the IP-tunnel cluster: table, VIP, tunl0, kernel settings, boot units, and traffic."""

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
        *(f"-a -t {VIP}:{PORT} -r {address}:{PORT} -i -w 1 --tun-type ipip" for address in REAL_SERVERS.values()),
    }
    (header, rules), table = lvsprobe.saved_and_running_table(director)
    assert header == "# ipvsadm.rules" and sorted(rules) == table and lvsprobe.in_restore_order(rules), rules


def test_director_holds_the_vip(director):
    ext = lvsprobe.device_of(director, DIRECTOR_EXT)
    assert f"inet {VIP}/32 " in director.check_output(f"ip -o -4 addr show dev {ext}")
    assert director.service("lvs-director").is_enabled


@pytest.mark.parametrize("name", sorted(REAL_SERVERS))
def test_real_server_receives_on_tunl0(name):
    rs = lvsprobe.node(name)
    tunl0 = rs.check_output("ip -o -4 addr show dev tunl0")
    assert f"inet {VIP}/32 " in tunl0
    assert ",UP" in rs.check_output("ip -o link show dev tunl0")
    assert lvsprobe.sysctl(rs, "net.ipv4.conf.tunl0.rp_filter") == "2"
    for conf in ("all", lvsprobe.device_of(rs, REAL_SERVERS[name])):
        assert lvsprobe.sysctl(rs, f"net.ipv4.conf.{conf}.arp_ignore") == "1", conf
        assert lvsprobe.sysctl(rs, f"net.ipv4.conf.{conf}.arp_announce") == "2", conf
    kept = rs.file("/etc/modules-load.d/lvs-realserver.conf").content_string
    assert [line for line in kept.splitlines() if not line.startswith("#")] == ["ipip"]
    assert rs.service("lvs-realserver").is_enabled


def test_traffic_reaches_every_real_server(client):
    answers = lvsprobe.send_requests(client, VIP, PORT, 20)
    assert not [a for a in answers if a[1].startswith("FAILED")], answers
    assert {answer for _source, answer in answers} == set(REAL_SERVERS), answers
