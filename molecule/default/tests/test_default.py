"""Verify the lab itself: run inside each container through testinfra's ansible backend."""

import pytest

DIRECTOR_EXT, DIRECTOR_INT = "198.18.0.144", "198.18.1.130"
ADDRESSES = {
    "director": [DIRECTOR_EXT, DIRECTOR_INT],
    "rs1": ["198.18.1.132"],
    "rs2": ["198.18.1.133"],
    "client": ["198.18.0.150"],
}


@pytest.fixture
def name(host):
    return host.backend.get_hostname()


def test_converge_wrote_into_this_container(host, name):
    # each container has its own /etc: the connection runs in the container, not in the lab
    mark = host.file("/etc/lvs-lab-molecule")
    assert mark.exists
    assert mark.content_string.strip() == f"node={name}"


def test_systemd_is_pid_1_and_booted(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-pager").stdout


def test_backend_says_its_own_name(host, name):
    assert host.service("lab-www").is_running
    assert host.check_output("curl -sS -m 5 http://127.0.0.1/") == f"hello from {name}"


def test_fixed_addresses(host, name):
    have = host.check_output("ip -4 -o addr show scope global")
    for address in ADDRESSES[name]:
        assert f" {address}/24 " in have


def test_no_route_out(host):
    # internal networks: podman gives no default route, so only the director can connect
    # the client's and the real servers' networks
    assert host.check_output("ip -4 route show default") == ""


def test_ipvs_and_legacy_iptables_work(host):
    assert host.run("modprobe ip_vs_wlc").rc == 0
    assert host.run("ipvsadm -Ln").rc == 0
    assert "legacy" in host.check_output("iptables --version")
    assert host.run("iptables -t nat -S").rc == 0


def test_networks_reach_only_through_the_director(host, name):
    ping = "ping -c 1 -W 2 {}"
    if name in ("rs1", "rs2"):
        assert host.run(ping.format(DIRECTOR_INT)).rc == 0
        assert host.run(ping.format("198.18.0.150")).rc != 0
    elif name == "client":
        assert host.run(ping.format(DIRECTOR_EXT)).rc == 0
        assert host.run(ping.format("198.18.1.132")).rc != 0
    else:
        for address in ("198.18.1.132", "198.18.1.133", "198.18.0.150"):
            assert host.run(ping.format(address)).rc == 0
