"""Tests of tests/lab/session: the controller on the host, the lab kernel beside it.

Run on the host, as root:  .venv/bin/pytest tests/lab/session_test.py
"""

import os
import subprocess

from conftest import at_once

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SESSION = os.path.join(HERE, 'session')


def session(script, timeout=600):
    """Run `sh -c script` as a session's COMMAND; the CompletedProcess (text)."""
    return subprocess.run([SESSION, 'sh', '-c', script], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


def host_network():
    """What a session must leave as it found it: the host's namespaces, links and routes."""
    out = subprocess.run('ip netns list; ip -br link; ip route; ip -6 route', shell=True,
                         capture_output=True, text=True, check=True)
    return out.stdout


def test_command_runs_in_a_namespace_of_its_own_that_is_gone_after():
    before = host_network()
    result = session('readlink /proc/self/ns/net; ip -4 -o addr show lab0; ip route')
    assert result.returncode == 0, result.stderr
    netns, addr, routes = result.stdout.split('\n', 2)
    assert netns != os.readlink('/proc/self/ns/net')
    assert '198.19.255.254/24' in addr.split()
    assert routes == '198.19.255.0/24 dev lab0 proto kernel scope link src 198.19.255.254 \n'
    assert host_network() == before


def test_exit_status_is_the_commands():
    assert session('exit 7').returncode == 7


def test_host_podman_is_a_client_of_the_labs_podman_and_a_node_answers_ssh():
    result = session(
        'set -e; podman info --format "{{.Host.Kernel}}"; '
        'podman network inspect lvs-mgmt --format "{{range .Subnets}}{{.Subnet}}{{end}}"; '
        'podman run -d --name n --hostname n --privileged --systemd=always '
        '  --network lvs-mgmt:interface_name=mgmt0,ip=198.19.255.9 localhost/lvs-lab-node:latest >/dev/null; '
        'for i in $(seq 60); do ssh -F "$LVS_LAB_SSH_CONFIG" 198.19.255.9 true 2>/dev/null && break; sleep 1; done; '
        'ssh -F "$LVS_LAB_SSH_CONFIG" 198.19.255.9 \'hostname; uname -r; ip -o -4 addr show mgmt0\'')
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    kernel = os.listdir('/usr/lib/uml/modules')[0]
    assert lines[:4] == [kernel, '198.19.255.0/24', 'n', kernel]   # the lab's kernel, not the host's
    assert '198.19.255.9/24' in lines[4].split()


def test_two_sessions_at_once():
    results = at_once(lambda name: session(
        f'podman network create --internal --subnet 198.18.7.0/24 {name} >/dev/null '
        f'&& podman network ls --format "{{{{.Name}}}}"'), ('first', 'second'))
    for name, result in results.items():
        assert result.returncode == 0, result.stderr
        # each its own lab: the other session's network is not there
        assert sorted(result.stdout.split()) == sorted([name, 'lvs-mgmt', 'podman']), result.stdout
