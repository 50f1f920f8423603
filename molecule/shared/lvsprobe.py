"""Helpers of the scenarios' verify: reach the nodes, send real traffic.

On molecule/shared, the verifier's PYTHONPATH (molecule/shared/base.yml). The nodes are reached
with testinfra's ssh backend, through the scenario's inventory (the session's ssh config: one
master connection per node), not through an Ansible run per command.
"""

import collections
import os
import shlex

import testinfra

# One line per request: "<source address> <who answered>" ("hello from " stripped).
_REQUESTS = r"""
set -u
vip=$1 port=$2 n=$3; shift 3
dev=$(ip -o route get "$vip" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
added=''
trap 'for a in $added; do ip addr del "$a/32" dev "$dev"; done' EXIT
for a in "$@"; do
    if ip addr add "$a/32" dev "$dev" 2>/dev/null; then added="$added $a"; fi
done
[ $# -gt 0 ] || set -- default
i=0
while [ "$i" -lt "$n" ]; do
    k=$((i % $# + 1)); eval "src=\${$k}"
    if [ "$src" = default ]; then
        answer=$(curl -s --connect-timeout 3 --max-time 5 "http://$vip:$port/") || answer="FAILED($?)"
    else
        answer=$(curl -s --connect-timeout 3 --max-time 5 --interface "$src" "http://$vip:$port/") || answer="FAILED($?)"
    fi
    echo "$src ${answer#hello from }"
    i=$((i + 1))
done
"""


def node(name):
    """The scenario's node `name`."""
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def send_requests(client, vip, port, count, sources=()):
    """Send count HTTP requests to vip:port from client, round-robin over the extra source
    addresses (added to the client for the requests, removed after). [(source, answer)]"""
    args = " ".join(shlex.quote(str(a)) for a in (vip, port, count, *sources))
    out = client.check_output(f"sh -c {shlex.quote(_REQUESTS)} requests {args}")
    return [tuple(line.split(" ", 1)) for line in out.splitlines() if line.strip()]


def by_source(answers):
    """{source: Counter(answer)}"""
    seen = collections.defaultdict(collections.Counter)
    for source, answer in answers:
        seen[source][answer] += 1
    return dict(seen)


def ipvs_lines(director):
    return set(director.check_output("ipvsadm -S -n").splitlines())


def saved_and_running_table(director):
    """The rules file the boot restores and the table now (``ipvsadm -S -n``), each exactly as it
    is (``run()``: over ssh ``check_output`` drops a last newline)."""
    return director.run("cat /etc/ipvsadm.rules").stdout, director.run("ipvsadm -S -n").stdout


def sysctl(host, key):
    return host.check_output(f"sysctl -n {shlex.quote(key)}").strip()


def device_of(host, address):
    """The interface holding address (podman does not keep the order of a container's networks:
    eth0 is not always the first one listed)."""
    return host.check_output(f"ip -o addr show to {shlex.quote(address)}").split()[1]
