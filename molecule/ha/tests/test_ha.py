"""Verify two NAT directors in failover with keepalived: one holder of the floating addresses, the
table keepalived's alone, health checks, failover and failback with real traffic, connections
that survive a failover (sync daemon), a planned drain, and a master whose keepalived is killed,
stopped or loses its VRRP child: it holds nothing, the backup takes over, keepalived comes back.

The tests run in file order: each one leaves the cluster as it found it (director1 holding the
addresses, both real servers in service). Every measure is printed (pytest -s shows them; the
molecule log keeps them).
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time

import lvsprobe
import pytest

VIP, GATEWAY, WEB, ECHO = "198.18.0.144", "198.18.1.130", 80, 7000
FLOATING = (VIP, GATEWAY)
DIRECTORS = ("director1", "director2")
REAL_SERVERS = {"rs1": "198.18.1.132", "rs2": "198.18.1.133"}
# molecule.yml's services, rs1 at weight 2 in the web service (for the check-mode proof)
SERVICES_WITH_RS1_WEIGHT_2 = [
    {"name": "web", "address": VIP, "port": WEB, "scheduler": "rr",
     "health_check": {"type": "http", "path": "/", "status": 200, "interval": 1, "timeout": 1, "retries": 1, "retry_delay": 1},
     "real_servers": [{"address": "198.18.1.132", "port": WEB, "weight": 2}, {"address": "198.18.1.133", "port": WEB}]},
    {"name": "echo", "address": VIP, "port": ECHO, "scheduler": "rr", "health_check": {"type": "tcp", "interval": 1, "timeout": 1},
     "real_servers": [{"address": "198.18.1.132", "port": ECHO}, {"address": "198.18.1.133", "port": ECHO}]},
]
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", ".")
LAB = os.path.join(PROJECT, "tests", "lab")


def ansible_playbook(*args, background=False):
    """ansible-playbook of this venv on the scenario's inventory, as a user runs the collection's
    playbooks (ssh options from the lab session, ANSIBLE_SSH_ARGS)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, "playbooks", "collections"),
               ANSIBLE_PIPELINING="true", ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
               "-i", os.environ["MOLECULE_INVENTORY_FILE"], *args]
    if background:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)


def weight(director, port, address):
    """The weight of a real server in the VIP's service on port, as the director's table has it."""
    for line in director.check_output(f"ipvsadm -L -n -t {VIP}:{port}").splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "->" and fields[1] == f"{address}:{port}":
            return int(fields[3])
    return None


@pytest.fixture(scope="module")
def client():
    return lvsprobe.node("client")


def holders():
    """{director: floating addresses it holds now}"""
    out = {}
    for name in DIRECTORS:
        text = lvsprobe.node(name).check_output("ip -o addr show")
        out[name] = sorted(a for a in FLOATING if f" {a}/" in text)
    return out


def wait_for(predicate, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"not within {timeout} s: {what}")


def overlaps(samples_a, samples_b):
    """Times at which both directors held a floating address: each director's holding spans run
    between two consecutive samples that both hold one; spans of the two that overlap."""
    def spans(samples):
        out = []
        for first, second in zip(samples, samples[1:]):
            if first[1] != "-" and second[1] != "-":
                out.append((float(first[0]), float(second[0])))
        return out
    return [(a, b) for a in spans(samples_a) for b in spans(samples_b) if a[0] < b[1] and b[0] < a[1]]


def overlap_seconds(samples_a, samples_b):
    """How long, in all, both directors held a floating address (the spans of overlaps())."""
    return sum(min(a[1], b[1]) - max(a[0], b[0]) for a, b in overlaps(samples_a, samples_b))


def longest_wait(answers, since):
    """The longest time the client went without an answer from since on (by when answers ended),
    and the answers' end times."""
    answered = sorted(float(t1) for t0, t1, who in answers if who != "FAILED" and float(t1) >= since)
    return max(b - a for a, b in zip([since] + answered, answered)), answered


def assert_keepalived_services(director):
    """The director's table has the inventory's services with both real servers: keepalived's."""
    table = lvsprobe.ipvs_lines(director)
    for port in (WEB, ECHO):
        assert f"-A -t {VIP}:{port} -s rr" in table
        for address in REAL_SERVERS.values():
            assert f"-a -t {VIP}:{port} -r {address}:{port} -m -w 1" in table


def sync_daemons(director):
    """The roles of the IPVS sync daemons running on the director (master, backup)."""
    return sorted(line.split()[0] for line in director.check_output("ipvsadm -L --daemon").splitlines()
                  if "sync daemon" in line)


# When a process started, by the lab's clock: its start in /proc (clock ticks since boot) from the
# boot's time (now less CLOCK_BOOTTIME).
PROCESS_STARTED = r"""
import os, sys, time
boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
with open("/proc/%s/stat" % sys.argv[1]) as stat:
    ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
print("%.3f" % (boot + ticks / os.sysconf("SC_CLK_TCK")))
"""


def process_started(host, pid):
    return float(host.check_output(f"python3 -c {shlex.quote(PROCESS_STARTED)} {int(pid)}"))


def keepalived_state(director):
    """systemd's view of keepalived (ActiveState, Result, MainPID, NRestarts) and its children's
    pids (vrrp, checkers: 0 when keepalived does not run)."""
    state = dict(line.split("=", 1) for line in director.check_output(
        "systemctl show -p ActiveState,Result,MainPID,NRestarts keepalived").splitlines())
    for child in ("vrrp", "checkers"):
        pid = director.run(f"cat /run/{child}.pid").stdout.strip()
        state[child] = pid if pid and director.run(f"kill -0 {pid}").rc == 0 else "0"
    return state


def once_director1_holds_both_again(samplers, loop, settle):
    """Wait (60 s at most) until director1 holds both floating addresses and director2 none, let
    the streams run settle s more, stop them: ({director: samples}, the client's answers)."""
    wait_for(lambda: holders() == {"director1": sorted(FLOATING), "director2": []}, 60, "director1 holds both again")
    time.sleep(settle)
    for process in list(samplers.values()) + [loop]:
        process.kill()
    return {name: lvsprobe.lines(process, 10) for name, process in samplers.items()}, lvsprobe.lines(loop, 10)


def test_one_director_holds_the_floating_addresses():
    # director1 has the higher priority (first of lvs_directors): it holds the VIP and the gateway
    wait_for(lambda: holders() == {"director1": sorted(FLOATING), "director2": []}, 30, "director1 holds both")


@pytest.mark.parametrize("name", DIRECTORS)
def test_keepalived_is_the_only_writer_of_the_services(name):
    director = lvsprobe.node(name)
    assert director.service("keepalived").is_running and director.service("keepalived").is_enabled
    assert_keepalived_services(director)
    # not in the rules file the ipvsadm service restores at boot, not in the role's own list
    saved = director.file("/etc/ipvsadm.rules").content_string
    assert VIP not in saved, saved
    assert json.loads(director.file("/var/lib/lvs-cluster/director-services.json").content_string) == []
    # keepalived starts after that restore (whose ipvsadm -C would clear its services)
    assert "After=ipvsadm.service" in director.file("/etc/systemd/system/keepalived.service.d/lvs-cluster.conf").content_string
    # nor does the boot unit put a VIP on the host: VRRP does
    assert "--vip" not in director.file("/etc/systemd/system/lvs-director.service").content_string
    assert director.check_output("ipvsadm -L -n --timeout").split()[-2] == "5"
    assert lvsprobe.sysctl(director, "net.ipv4.vs.expire_nodest_conn") == "1"


def test_check_mode_shows_the_keepalived_conf_diff_and_signals_nothing():
    director1 = lvsprobe.node("director1")
    reloads = "journalctl -u keepalived --no-pager | grep -c Reloading || true"
    pid, reloaded = (director1.check_output("systemctl show -p MainPID --value keepalived"), director1.check_output(reloads))
    before = director1.file("/etc/keepalived/keepalived.conf").content_string
    # the inventory with rs1 at weight 2 in the web service, given as extra vars
    run = ansible_playbook("--check", "--diff", "--tags", "director_keepalived", "--limit", "lvs_directors",
                           "-e", json.dumps({"lvs_virtual_services": SERVICES_WITH_RS1_WEIGHT_2}),
                           os.path.join(PROJECT, "playbooks", "nat.yml"))
    assert run.returncode == 0, run.stdout
    assert "-        weight 1\n+        weight 2" in run.stdout, run.stdout
    assert re.search(r"director1 +: ok=[0-9]+ +changed=1 ", run.stdout), run.stdout
    # nothing changed, nothing signalled: the same file, the same keepalived, rs1 still at weight 1
    assert director1.file("/etc/keepalived/keepalived.conf").content_string == before
    assert (director1.check_output("systemctl show -p MainPID --value keepalived"), director1.check_output(reloads)) == (pid, reloaded)
    assert weight(director1, WEB, REAL_SERVERS["rs1"]) == 1


@pytest.mark.parametrize("name", sorted(REAL_SERVERS))
def test_real_servers_route_through_the_floating_gateway(name):
    rs = lvsprobe.node(name)
    assert rs.check_output("ip -4 route show default").split()[:3] == ["default", "via", GATEWAY]


def test_traffic_reaches_both_real_servers(client):
    answers = lvsprobe.send_requests(client, VIP, WEB, 10)
    assert sorted(set(a[1] for a in answers)) == ["rs1", "rs2"], answers


def test_a_dead_backend_leaves_within_10_s_and_comes_back_once(client):
    rs1 = lvsprobe.node("rs1")
    loop = lvsprobe.stream("client", lvsprobe.CLIENT_LOOP, VIP, WEB, 40, 0.2)
    sampler = lvsprobe.stream("director1", lvsprobe.DIRECTOR_SAMPLER, 40, f"{VIP}:{WEB}", *FLOATING)
    time.sleep(5)
    stopped = lvsprobe.now(rs1)
    rs1.check_output("systemctl stop lab-www")
    time.sleep(15)
    started = lvsprobe.now(rs1)
    rs1.check_output("systemctl start lab-www")
    answers = lvsprobe.lines(loop, 60)
    samples = lvsprobe.lines(sampler, 60)

    # (start, end, who) of each request, in seconds after the stop
    timeline = [(float(t0) - stopped, float(t1) - stopped, who) for t0, t1, who in answers]
    restart = started - stopped
    bad = [r for r in timeline if 0 <= r[0] < restart and r[2] in ("rs1", "FAILED")]
    last_bad = max([r[1] for r in bad] or [0.0])
    out_of_table = min(float(sample[0]) for sample in samples
                       if float(sample[0]) > stopped and REAL_SERVERS["rs1"] not in sample[2]) - stopped
    print(f"\nbackend stopped: the last request to rs1 or failed ended {last_bad:.1f} s after,"
          f" rs1 out of the table {out_of_table:.1f} s after; the failures {bad}")
    assert last_bad <= 10, timeline
    between = [r[2] for r in timeline if last_bad < r[0] and r[1] < restart]
    assert between and set(between) == {"rs2"}, timeline
    after = [r[2] for r in timeline if r[0] > restart]
    assert "rs1" in after and "FAILED" not in after, timeline
    # rs1's place in the table: in, out, in again - one transition each way, no flapping
    states = [REAL_SERVERS["rs1"] in sample[2] for sample in samples]
    changes = [b for a, b in zip(states, states[1:]) if a != b]
    assert states[0] and states[-1] and changes == [False, True], samples


def test_the_backup_takes_over_within_5_s_and_connections_survive(client):
    # a new SYN every 0.5 s at most: the wait measured is the failover's, not TCP's backoff
    loop = lvsprobe.stream("client", lvsprobe.CLIENT_LOOP, VIP, WEB, 30, 0.1, 0.5)
    held = lvsprobe.stream("client", lvsprobe.HELD_CONNECTION, VIP, ECHO, "/tmp/lvs-go", 60)
    samplers = {name: lvsprobe.stream(name, lvsprobe.DIRECTOR_SAMPLER, 30, f"{VIP}:{WEB}", *FLOATING)
                for name in DIRECTORS}
    client.run("rm -f /tmp/lvs-go")
    time.sleep(5)
    # the backup knows the held connection before the failover (the sync daemon)
    synced = lvsprobe.node("director2").check_output(f"ipvsadm -L -n -c | grep -c ':{ECHO} ' || true")
    # director1 fails as a machine does: its links go at once (the kernel, which forwards, stops
    # with them), then the container is killed; only then does the held connection speak again
    director1 = lvsprobe.node("director1")
    links = [lvsprobe.device_of(director1, address) for address in ("198.18.0.141", "198.18.1.141")]
    killed = float(director1.check_output("date +%s.%N; " + "; ".join(f"ip link set dev {dev} down" for dev in links)).split()[0])
    subprocess.run(["podman", "kill", "director1"], check=True, capture_output=True)
    subprocess.run(["podman", "wait", "director1"], check=True, capture_output=True, timeout=60)
    time.sleep(8)
    client.check_output("touch /tmp/lvs-go")
    answers = lvsprobe.lines(loop, 60)
    connection = lvsprobe.lines(held, 60)
    # director1's stream died with it (its ssh may only notice later): what it printed is enough
    samples = {name: lvsprobe.lines(process, 60 if name == "director2" else 2) for name, process in samplers.items()}

    # the longest time the client went without an answer, from the failure on (by when answers ended)
    longest, answered = longest_wait(answers, killed)
    failed = [(round(float(t0) - killed, 1), round(float(t1) - killed, 1)) for t0, t1, who in answers
              if who == "FAILED" and float(t0) >= killed]
    took_over = min(float(sample[0]) for sample in samples["director2"] if sample[1] != "-") - killed
    print(f"\nmaster failed: director2 held the addresses {took_over:.1f} s after, the client's longest"
          f" wait for an answer {longest:.1f} s, failed requests (begun, ended, s after the failure)"
          f" {failed}; connections the backup knew before: {synced.strip()}; held connection:"
          f" {connection}")
    assert int(synced) >= 1, "the backup knew no connection of the echo service before the failover"
    assert longest <= 5, answers
    assert answered and answered[-1] > killed + 20, answers
    assert overlaps(samples["director1"], samples["director2"]) == []
    # the VIP and the gateway move together (a sync group): a director holds both or neither, but
    # at the instant one sample may fall between two addresses' moves - never two in a row
    for name in DIRECTORS:
        partial = [sample[1] not in ("-", f"{VIP},{GATEWAY}") for sample in samples[name]]
        assert not any(a and b for a, b in zip(partial, partial[1:])), samples[name]
    # the connection opened before the failover is answered after it, by the same real server
    assert len(connection) == 2 and not connection[1][1].startswith("FAILED"), connection
    assert connection[0][1:] == [connection[0][1], "before"] and connection[1][1:] == [connection[0][1], "after"], connection


def test_the_master_comes_back_and_takes_over_without_two_holders(client):
    samplers = {"director2": lvsprobe.stream("director2", lvsprobe.DIRECTOR_SAMPLER, 90, f"{VIP}:{WEB}", *FLOATING)}
    loop = lvsprobe.stream("client", lvsprobe.CLIENT_LOOP, VIP, WEB, 90, 0.2)
    subprocess.run(["podman", "start", "director1"], check=True, capture_output=True)
    subprocess.run([os.path.join(LAB, "wait-booted"), "director1"], check=True, capture_output=True)
    samplers["director1"] = lvsprobe.stream("director1", lvsprobe.DIRECTOR_SAMPLER, 60, f"{VIP}:{WEB}", *FLOATING)
    samples, answers = once_director1_holds_both_again(samplers, loop, 3)
    assert overlaps(samples["director1"], samples["director2"]) == []
    failed = [(t0, t1) for t0, t1, who in answers if who == "FAILED"]
    print(f"\nmaster back: {len(failed)} of {len(answers)} requests failed during the failback: {failed}")
    assert len(failed) <= 10, answers
    assert [answer[-1] for answer in answers[-5:]] != ["FAILED"] * 5, answers


def test_a_drained_real_server_ends_its_connections_and_takes_no_new_ones(client):
    director1 = lvsprobe.node("director1")
    client.run("rm -f /tmp/lvs-go-drain")
    held = lvsprobe.stream("client", lvsprobe.HELD_CONNECTION, VIP, ECHO, "/tmp/lvs-go-drain", 120)
    drained = held.stdout.readline().split()[1]          # who answered "before"
    other = next(name for name in REAL_SERVERS if name != drained)
    keepalived_pid = director1.check_output("systemctl show -p MainPID --value keepalived")
    started = time.time()
    drain = ansible_playbook(os.path.join(PROJECT, "playbooks", "drain.yml"), "-e",
                             json.dumps({"director_drain_real_servers": [REAL_SERVERS[drained]],
                                         "director_drain_timeout": 120}), background=True)
    wait_for(lambda: weight(director1, WEB, REAL_SERVERS[drained]) == 0, 180, f"{drained} at weight 0")
    weight_zero = time.time() - started
    # no new connection goes to it; the open one goes on
    answers = lvsprobe.send_requests(client, VIP, WEB, 10)
    assert set(a[1] for a in answers) == {other}, answers
    client.check_output("touch /tmp/lvs-go-drain")
    connection = lvsprobe.lines(held, 30)
    out = drain.communicate(timeout=300)[0]
    print(f"\ndrain of {drained}: weight 0 after {weight_zero:.0f} s, removed after {time.time() - started:.0f} s;"
          f" held connection: {connection}")
    assert drain.returncode == 0, out
    assert "they are removed now" not in out, out
    assert [c[1:] for c in connection] == [[drained, "after"]], connection
    for name in DIRECTORS:
        assert REAL_SERVERS[drained] not in lvsprobe.node(name).check_output("ipvsadm -S -n"), name
    # two new keepalived.conf files applied, by reloads: the same keepalived process throughout
    assert director1.check_output("systemctl show -p MainPID --value keepalived") == keepalived_pid
    # the inventory still lists it: the cluster's playbook puts it back
    back = ansible_playbook("--tags", "director_keepalived", os.path.join(PROJECT, "playbooks", "nat.yml"))
    assert back.returncode == 0, back.stdout
    wait_for(lambda: weight(director1, WEB, REAL_SERVERS[drained]) == 1, 30, f"{drained} back in service")


# These come last: each failback can leave on the master the sync daemon's copies of connections
# that broke in it (ESTABLISHED, counted active until the TCP timeout, 900 s), which a drain waits
# for (until director_drain_timeout) - the drain proof runs before them.
#
# How keepalived stops on the master: every process of it killed by one `kill -KILL` (an OOM kill,
# a crash: nothing is cleaned up; systemd's drop-in releases it all and starts keepalived again;
# the parent, killed last, may have started new children in between: KillMode=mixed kills those at
# once), an operator's stop (keepalived releases it all itself; the stop is not undone until the
# operator starts it), only its VRRP child killed (keepalived's parent starts a new one at once,
# which drops the addresses as it starts as BACKUP; the unit does not stop).
KEEPALIVED_STOPS = {
    "killed": "kill -KILL $(pidof keepalived)",
    "stopped": "systemctl stop keepalived",
    "vrrp_child_killed": "kill -KILL $(cat /run/vrrp.pid)",
}


@pytest.mark.parametrize("how", sorted(KEEPALIVED_STOPS))
def test_a_master_whose_keepalived_stops_holds_nothing_and_takes_over_again(client, how):
    director1, director2 = lvsprobe.node("director1"), lvsprobe.node("director2")
    before = keepalived_state(director1)
    # a new SYN every 0.5 s at most, as in the failover proof
    loop = lvsprobe.stream("client", lvsprobe.CLIENT_LOOP, VIP, WEB, 90, 0.1, 0.5)
    samplers = {name: lvsprobe.stream(name, lvsprobe.DIRECTOR_SAMPLER, 90, f"{VIP}:{WEB}", *FLOATING)
                for name in DIRECTORS}
    time.sleep(3)
    began = float(director1.check_output(f"date +%s.%N; {KEEPALIVED_STOPS[how]}").split()[0])
    if how == "stopped":
        time.sleep(4)   # systemd would have started it again by now (RestartSec=1)
        stopped = keepalived_state(director1)
        assert (stopped["ActiveState"], stopped["Result"]) == ("inactive", "success"), stopped
        assert holders()["director1"] == [] and VIP not in director1.check_output("ipvsadm -S -n")
        assert sync_daemons(director1) == []
        director1.check_output("systemctl start keepalived")
    else:
        wait_for(lambda: holders()["director1"] == [], 20, "director1 lets the addresses go")
    samples, answers = once_director1_holds_both_again(samplers, loop, 2)
    after = keepalived_state(director1)

    # (s after it began, holds a floating address) of every sample
    held = {name: [(float(sample[0]) - began, sample[1] != "-") for sample in samples[name]] for name in DIRECTORS}
    released = min(t for t, holds in held["director1"] if t >= 0 and not holds)
    back = min(t for t, holds in held["director1"] if holds and t > released)
    took_over = min([t for t, holds in held["director2"] if t >= 0 and holds] or [float("nan")])
    longest, answered = longest_wait(answers, began)
    overlap = overlap_seconds(samples["director1"], samples["director2"])
    # keepalived's new process (the unit's, restarted by systemd, or started by the operator) or its new VRRP child
    new = after["vrrp"] if how == "vrrp_child_killed" else after["MainPID"]
    ran_again = process_started(director1, new) - began
    # the VRRP states the master went through from then on: its new VRRP process started as BACKUP,
    # then VRRP made it master again, once (priority 150 preempts 140)
    journal = director1.check_output(f"journalctl -u keepalived --since @{began:.3f} -o cat --no-pager")
    transitions = re.findall(r"\((lvs_vip|lvs_gateway)\) Entering (\w+ STATE(?: \(init\))?)", journal)
    print(f"\nkeepalived {how} on the master: director1 held no address {released:.1f} s after, director2 held"
          f" them {took_over:.1f} s after, director1 again {back:.1f} s after; keepalived's new process"
          f" {'(started by the operator) ' if how == 'stopped' else ''}{ran_again:.1f} s after; the client's"
          f" longest wait for an answer {longest:.1f} s; both directors held a floating address {overlap:.1f} s in all;"
          f" director1's VRRP {transitions}; children its parent started again: {journal.count('died: Respawning')}")
    # what a failed assertion shows: the requests (begun, ended, s after) and the samples (s after, holds)
    timeline = ([(round(float(t0) - began, 2), round(float(t1) - began, 2), who) for t0, t1, who in answers], held)
    assert overlap <= 1.0, timeline
    assert longest <= 5 and answered[-1] > back + began, timeline
    if how == "killed":
        assert after["MainPID"] != before["MainPID"] and int(after["NRestarts"]) == int(before["NRestarts"]) + 1, after
    if how == "vrrp_child_killed":
        # the unit never stopped: the parent started a new VRRP child itself
        assert (after["MainPID"], after["NRestarts"]) == (before["MainPID"], before["NRestarts"]) and new != before["vrrp"], after
    if how != "stopped":
        assert ran_again <= 10, ran_again
    for name in ("lvs_vip", "lvs_gateway"):
        assert [state for instance, state in transitions if instance == name] == ["BACKUP STATE (init)", "MASTER STATE"], journal
    # one transition each way: director1 let go once and took the addresses back once, director2 at most
    # took them and let them go (in the VRRP child's case it may hold them less than a sample apart)
    changes = {name: [b[1] for a, b in zip(held[name], held[name][1:]) if a[1] != b[1]] for name in DIRECTORS}
    assert changes["director1"] == [False, True] and changes["director2"] in ([], [True, False]), timeline
    # the normal state: one holder (above), keepalived and its checker on both, both tables
    # keepalived's, the sync daemon sending from the master to the backup
    for name in DIRECTORS:
        state = keepalived_state(lvsprobe.node(name))
        assert state["ActiveState"] == "active" and state["checkers"] != "0", (name, state)
        assert_keepalived_services(lvsprobe.node(name))
    assert (sync_daemons(director1), sync_daemons(director2)) == (["master"], ["backup"])
