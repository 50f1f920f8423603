"""Verify the NAT cluster of inventories/lab: table, settings, routes, boot units, and traffic."""

import json

import lvsprobe
import pytest

VIP, PORT = "198.18.0.144", 80
DIRECTOR_INT, INTERNAL = "198.18.1.130", "198.18.1.0/24"
REAL_SERVERS = {"rs1": "198.18.1.132", "rs2": "198.18.1.133"}
# inventories/lab/host_vars/client.yml: the service is persistent, see playbooks/prove.yml
SOURCES = ["198.18.0.151", "198.18.0.152", "198.18.0.153", "198.18.0.154"]


@pytest.fixture(scope="module")
def director():
    return lvsprobe.node("director")


@pytest.fixture(scope="module")
def client():
    return lvsprobe.node("client")


def test_ipvs_table_is_the_inventory(director):
    assert lvsprobe.ipvs_lines(director) == {
        f"-A -t {VIP}:{PORT} -s wlc -p 3",
        *(f"-a -t {VIP}:{PORT} -r {address}:{PORT} -m -w 1" for address in REAL_SERVERS.values()),
    }


def test_ipvs_table_is_saved_for_boot(director):
    (header, rules), table = lvsprobe.saved_and_running_table(director)
    # the table, then the timeouts inventories/lab gives (director_ipvs_timeouts), which the
    # restore runs as any other line
    assert header == "# ipvsadm.rules" and sorted(rules[:-1]) == table and rules[-1] == "--set 0 30 0", rules
    assert lvsprobe.in_restore_order(rules), rules
    assert 'AUTO="true"' in director.file("/etc/default/ipvsadm").content_string
    assert director.service("ipvsadm").is_enabled
    assert director.service("lvs-director").is_enabled


def test_ipvs_timeouts_are_the_inventory(director):
    # tcp and udp keep the kernel's values; after a restart the boot restore set them again
    assert director.check_output("ipvsadm -L -n --timeout").split()[-3:] == ["900", "30", "300"]


def test_ipvs_settings_drop_the_connections_of_removed_and_drained_real_servers(director):
    for key in ("expire_nodest_conn", "expire_quiescent_template"):
        assert lvsprobe.sysctl(director, f"net.ipv4.vs.{key}") == "1", key


def test_director_lists_the_services_it_made(director):
    made = json.loads(director.file("/var/lib/lvs-cluster/director-services.json").content_string)
    assert made == [{"protocol": "tcp", "address": VIP, "port": PORT}]


def test_director_forwards_and_sends_no_redirects(director):
    assert lvsprobe.sysctl(director, "net.ipv4.ip_forward") == "1"
    for conf in ("all", "default", "eth0", "eth1"):
        assert lvsprobe.sysctl(director, f"net.ipv4.conf.{conf}.send_redirects") == "0", conf
    kept = director.file("/etc/sysctl.d/90-lvs-director.conf").content_string
    assert "net.ipv4.ip_forward = 1" in kept.splitlines()


def test_director_masquerades_the_internal_network_once(director):
    rules = director.check_output("iptables -w -t nat -S POSTROUTING").splitlines()
    ours = [r for r in rules if "MASQUERADE" in r and "lvs.cluster" in r]
    assert len(ours) == 1, rules
    assert f"-s {INTERNAL} ! -d {INTERNAL}" in ours[0]


def test_director_modules_listed_for_boot(director):
    # lvs.cluster.kernel_settings: one file holding the list (after its header comment)
    kept = director.file("/etc/modules-load.d/lvs-director.conf").content_string
    assert [line for line in kept.splitlines() if not line.startswith("#")] == ["ip_vs", "ip_vs_wlc"]


@pytest.mark.parametrize("name", sorted(REAL_SERVERS))
def test_real_server_routes_through_the_director(name):
    rs = lvsprobe.node(name)
    assert rs.check_output("ip -4 route show default").split()[:3] == ["default", "via", DIRECTOR_INT]
    assert rs.service("lvs-realserver").is_enabled


def test_traffic_reaches_every_real_server(client):
    answers = lvsprobe.send_requests(client, VIP, PORT, 20, SOURCES)
    assert len(answers) == 20
    assert not [a for a in answers if a[1].startswith("FAILED")], answers
    seen = lvsprobe.by_source(answers)
    # persistence: each client address stayed on one real server ...
    assert all(len(counts) == 1 for counts in seen.values()), seen
    # ... and the addresses together reached every real server
    assert {answer for _source, answer in answers} == set(REAL_SERVERS), seen
