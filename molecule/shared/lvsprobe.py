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
    """The rules file the boot restores, as (its header line, its rules in order), and the table now
    (``ipvsadm -S -n``) as its lines sorted: the module writes the rules in a stable order (each
    service before its real servers), the kernel lists them in its own."""
    saved = director.run("cat /etc/ipvsadm.rules").stdout.splitlines()
    # ipvsadm prints the kernel's default tunnel type (ipip), which the module leaves out
    running = [line.replace(" --tun-type ipip", "") for line in director.run("ipvsadm -S -n").stdout.splitlines()]
    return (saved[0] if saved else None, saved[1:]), sorted(running)


def in_restore_order(rules):
    """Whether each real server line of a rules file comes after its service's line."""
    seen = set()
    for line in rules:
        words = line.split()
        if words and words[0] == "-A":
            seen.add(tuple(words[1:3]))
        elif words and words[0] == "-a" and tuple(words[1:3]) not in seen:
            return False
    return True


def sysctl(host, key):
    return host.check_output(f"sysctl -n {shlex.quote(key)}").strip()


def device_of(host, address):
    """The interface holding address (podman does not keep the order of a container's networks:
    eth0 is not always the first one listed)."""
    return host.check_output(f"ip -o addr show to {shlex.quote(address)}").split()[1]


# ---------------------------------------------------------------------------------------------
# Probes that run while something happens (a backend stops, a director dies): each is one ssh
# process streaming timestamped lines back (every node reads the one lab kernel's clock), so
# samples from different nodes compare in time, and a node that dies just ends its stream.

# Client: one HTTP request every INTERVAL s for DURATION s (CONNECT s to connect, default 2, then
# 2 s to read): "<when it began> <when it ended> <who answered>" or "... FAILED". A short CONNECT
# sends a new SYN that often instead of waiting for TCP's retransmission (1 s, then 2 s ...).
CLIENT_LOOP = r"""
import http.client, sys, time
vip, port, duration, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
connect = float(sys.argv[5]) if len(sys.argv) > 5 else 2.0
end = time.time() + duration
while time.time() < end:
    t = time.time()
    try:
        conn = http.client.HTTPConnection(vip, port, timeout=connect)
        conn.connect()
        conn.sock.settimeout(2.0)
        conn.request("GET", "/")
        who = conn.getresponse().read().decode().split()[-1]
        conn.close()
    except Exception:
        who = "FAILED"
    print("%.3f %.3f %s" % (t, time.time(), who), flush=True)
    time.sleep(max(0.0, interval - (time.time() - t)))
"""

# Director: every 0.2 s, "<time> <floating addresses it holds, or -> <real servers of SERVICE, or ->".
# The time is the addresses' reading (in the loaded lab `ip` may take a few tenths of a second to
# start: stamped before it, two directors' samples could seem to hold at once when they did not).
DIRECTOR_SAMPLER = r"""
import subprocess, sys, time
duration, service, floating = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
end = time.time() + duration
while time.time() < end:
    addrs = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    t = time.time()
    held = [a for a in floating if " %s/" % a in addrs]
    table = subprocess.run(["ipvsadm", "-L", "-n", "-t", service], capture_output=True, text=True).stdout
    servers = [line.split()[1] for line in table.splitlines()
               if line.strip().startswith("->") and "RemoteAddress" not in line]
    print("%.3f %s %s" % (t, ",".join(held) or "-", ",".join(servers) or "-"), flush=True)
    time.sleep(0.2)
"""

# Client: one TCP connection to the echo service held open: sends "before", then waits until the
# file GO exists, sends "after", then closes. Prints each answer ("<host> <line>") or FAILED.
HELD_CONNECTION = r"""
import os, socket, sys, time
vip, port, go, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = socket.create_connection((vip, port), timeout=5)
f = s.makefile("rwb")
def ask(line):
    try:
        f.write(line.encode() + b"\n"); f.flush()
        return f.readline().decode().strip() or "FAILED(closed)"
    except Exception as exc:
        return "FAILED(%s)" % exc.__class__.__name__
print("%.3f %s" % (time.time(), ask("before")), flush=True)
end = time.time() + limit
while not os.path.exists(go) and time.time() < end:
    time.sleep(0.1)
s.settimeout(10)
print("%.3f %s" % (time.time(), ask("after")), flush=True)
s.close()
"""


def _address(name):
    """Where ssh reaches node `name` (its ansible_host in the scenario's inventory)."""
    return node(name).backend.ansible_runner.get_variables(name)["ansible_host"]


def stream(name, script, *args):
    """Run a Python script on node `name` over ssh; a Popen whose stdout streams its lines."""
    import subprocess
    command = "python3 -c %s %s" % (shlex.quote(script), " ".join(shlex.quote(str(a)) for a in args))
    return subprocess.Popen(["ssh", "-F", os.environ["LVS_LAB_SSH_CONFIG"], _address(name), command],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines(process, timeout):
    """The lines a stream printed, once it ended (or was stopped after timeout s): [[words]]."""
    import subprocess
    try:
        out = process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        out = process.communicate()[0]
    return [line.split() for line in out.splitlines() if line.strip()]


def now(host):
    """The lab's clock, read on a node."""
    return float(host.check_output("date +%s.%N"))
