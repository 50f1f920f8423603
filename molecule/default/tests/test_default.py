"""Verify the lab itself, inside each container (testinfra over ssh, on the management network).

Each check is one command in the container.
"""

import pytest

ADDRESSES = {
    "director": ["198.18.0.144", "198.18.1.130"],
    "rs1": ["198.18.1.132"],
    "rs2": ["198.18.1.133"],
    "client": ["198.18.0.150"],
}
# Who reaches whom: only the director is on both networks, and nothing routes around it.
REACHABLE = {
    "director": {"198.18.1.132": True, "198.18.1.133": True, "198.18.0.150": True},
    "rs1": {"198.18.1.130": True, "198.18.0.150": False, "198.18.0.144": False},
    "rs2": {"198.18.1.130": True, "198.18.0.150": False, "198.18.0.144": False},
    "client": {"198.18.0.144": True, "198.18.1.132": False, "198.18.1.130": False},
}


@pytest.fixture
def name(host):
    return host.backend.get_hostname()


def test_converge_wrote_into_this_container(host, name):
    # each container has its own /etc: the connection runs in the container, not in the lab
    assert host.file("/etc/lvs-lab-molecule").content_string == f"node={name}\n"


def test_systemd_is_pid_1_and_booted(host):
    out = host.run("cat /proc/1/comm; systemctl is-system-running; systemctl --failed --no-legend")
    assert out.stdout.split("\n", 2)[:2] == ["systemd", "running"], out.stdout


def test_backend_says_its_own_name(host, name):
    assert host.check_output("curl -sS -m 5 http://127.0.0.1/") == f"hello from {name}"


def test_fixed_addresses_and_no_default_route(host, name):
    out = host.check_output("ip -4 -o addr show scope global; echo ROUTES; ip -4 route show default")
    addresses, routes = out.split("ROUTES")
    held = {a.split()[1]: a.split()[3] for a in addresses.strip().splitlines()}
    # mgmt0: the controller's way in (tests/lab/session), on its own network
    assert held.pop("mgmt0").startswith("198.19.255.")
    assert sorted(held.values()) == sorted(f"{a}/24" for a in ADDRESSES[name])
    # internal networks: podman gives no default route; the roles set the real servers' own
    assert routes.strip() == ""


def test_reachability(host, name):
    targets = REACHABLE[name]
    # (check_output's %s would quote the list into one word: the addresses are constants)
    out = host.check_output(
        f"for a in {' '.join(targets)}; do"
        " ping -c 1 -W 2 $a >/dev/null 2>&1 && echo $a yes || echo $a no; done"
    )
    assert dict(line.split() for line in out.splitlines()) == {
        a: "yes" if up else "no" for a, up in targets.items()
    }


def test_ipvs_and_legacy_iptables(host, name):
    if name != "director":
        pytest.skip("the director's tools are enough to prove the image")
    out = host.run("modprobe ip_vs_wlc && ipvsadm -Ln && iptables -V && iptables -t nat -S")
    assert out.rc == 0, out.stderr
    assert "IP Virtual Server" in out.stdout and "(legacy)" in out.stdout


def test_a_fresh_node_has_no_ipvsadm_or_keepalived_but_apt_has_them(host, name):
    # what the roles install comes from the image's local apt repository, as on a user's fresh host
    # (the director got ipvsadm in converge): the check steps of the cluster scenarios start there
    if name != "director":
        assert not host.exists("ipvsadm") and not host.exists("keepalived")
    for package in ("ipvsadm", "keepalived"):
        policy = host.check_output(f"apt-cache policy {package}")
        candidate = [line.split()[1] for line in policy.splitlines() if line.strip().startswith("Candidate:")]
        assert candidate and candidate[0] != "(none)", policy


def test_the_echo_backend_answers_each_line_on_one_connection(host, name):
    out = host.check_output("printf 'one\\ntwo\\n' | nc -q 1 127.0.0.1 7000")
    assert out.splitlines() == [f"{name} one", f"{name} two"]
