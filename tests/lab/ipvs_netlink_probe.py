"""Runs INSIDE the lab kernel (as root), for tests/lab/ipvs_netlink_test.py: loads real IPVS tables
with ipvsadm and reads each both ways, the netlink reader's and ipvsadm's, printing what each read as
one JSON object. Nothing is compared here: the test on the host does that.

    tests/lab/run -- .venv/bin/python tests/lab/ipvs_netlink_probe.py check
    tests/lab/run --bind "$PWD/tests/unit/fixtures" -- .venv/bin/python tests/lab/ipvs_netlink_probe.py \\
        capture "$PWD/tests/unit/fixtures"     (refreshes the unit tests' netlink fixture)

Addresses: 198.18.0.0/15, 2001:2::/48 (benchmarking ranges) and loopback only.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'playbooks', 'collections'))

from ansible_collections.lvs.cluster.plugins.module_utils import ipvs, ipvs_netlink  # noqa: E402

ENV = dict(os.environ, LANG='C', LC_ALL='C')

# Every kind of service and real server the kernel and ipvsadm 1.31 take.
EVERY_KIND = '''\
-A -t 198.18.0.10:80 -s wlc -p 3 -M 255.255.255.0
-a -t 198.18.0.10:80 -r 198.18.1.10:8080 -m -w 2 -x 100 -y 10
-a -t 198.18.0.10:80 -r 198.18.1.11:80 -m -w 0
-a -t 198.18.0.10:80 -r 198.18.1.12:80 -g -w 65535 -x 2147483647
-a -t 198.18.0.10:80 -r 198.18.1.13:258 -m -w 1 -x 20 -y 7
-A -u 198.18.0.10:53 -s rr -o
-a -u 198.18.0.10:53 -r 198.18.1.10:53 -g -w 1
-a -u 198.18.0.10:53 -r 198.18.1.11:53 -i -w 3 --tun-type gue --tun-port 6080 --tun-nocsum
-a -u 198.18.0.10:53 -r 198.18.1.12:53 -i -w 3 --tun-type gue --tun-port 65534 --tun-csum
-a -u 198.18.0.10:53 -r 198.18.1.13:53 -i -w 3 --tun-type gue --tun-port 258 --tun-remcsum
-a -u 198.18.0.10:53 -r 198.18.1.14:53 -i -w 3 --tun-type gre --tun-csum
-a -u 198.18.0.10:53 -r 198.18.1.15:53 -i -w 3 --tun-type gre --tun-nocsum
-a -u 198.18.0.10:53 -r 198.18.1.16:53 -i -w 0
-A --sctp-service 198.18.0.10:9999 -s fo
-a --sctp-service 198.18.0.10:9999 -r 198.18.1.10:9999 -m -w 1
-A -t 198.18.0.11:5060 -s rr -p 600 --pe sip
-A -u 198.18.0.11:5060 -s sh -b sh-fallback,sh-port -p 60 -M 255.255.0.0 --pe sip
-A -t 198.18.0.12:80 -s sh -b sh-port
-A -t 198.18.0.13:80 -s sh -b sh-fallback
-A -t 198.18.0.14:80 -s mh -b mh-fallback
-A -t 198.18.0.15:80 -s mh -b mh-fallback,mh-port
-A -t 198.18.0.16:80 -s rr -b flag-1,flag-3
-A -t 198.18.0.17:80 -s lblc -p 100
-A -t 198.18.0.18:65535 -s rr
-a -t 198.18.0.18:65535 -r 198.18.1.18:65535 -g -w 1
-a -t 198.18.0.18:65535 -r 198.18.1.19:1 -m -w 1
-A -t [2001:2::1]:443 -s rr -p 300 -M 64
-a -t [2001:2::1]:443 -r [2001:2::0:2]:443 -g -w 5
-a -t [2001:2::1]:443 -r [2001:2:0:1:2:3:4:5]:8443 -m -w 1 -x 10 -y 2
-a -t [2001:2::1]:443 -r 198.18.1.20 -i -w 5
-a -t [2001:2::1]:443 -r 198.18.1.21 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum
-a -t [2001:2::1]:443 -r [2001:2::22]:443 -i -w 1 --tun-type gre --tun-csum
-A -u [2001:2::1]:53 -s wrr -o
-a -u [2001:2::1]:53 -r [2001:2::3]:53 -m -w 0
-A --sctp-service [2001:2::1]:9999 -s nq -p 60 -M 128
-A -t [2001:2:0:ffff::1]:80 -s mh -b mh-port -p 10 -M 48
-A -f 7 -s sh -b sh-fallback,sh-port -p 30 -M 255.255.0.0
-a -f 7 -r 198.18.1.30 -g
-a -f 7 -r 198.18.1.31:8080 -m -w 4
-A -f 8 -6 -s mh -b mh-port -p 60 -M 64
-a -f 8 -6 -r [2001:2::40]:0 -g -w 2
-a -f 8 -6 -r 198.18.1.40 -i -w 1
-A -f 9 -6 -s rr
'''
# One service per scheduler.
EVERY_KIND += ''.join('-A -t 198.18.2.1:%d -s %s\n' % (1000 + i, s) for i, s in enumerate(
    ('rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh')))

# What ipvsadm 1.31 -S misprints: flag 3 of sh and mh (left out; a bare "-b " for it alone) and
# firewall marks from 2^31 on (printed as signed numbers).
MISPRINTED = '''\
-A -t 198.18.0.30:80 -s sh -b flag-3
-A -t 198.18.0.31:80 -s mh -b mh-port,flag-3
-A -f 4294967295 -s rr
-A -f 2147483648 -6 -s wrr
'''

TRAFFIC_VIP = '198.18.0.160'
REQUESTS = 5


def run(*argv, data=None, check=True):
    proc = subprocess.run(list(argv), input=data, capture_output=True, text=True, env=ENV, check=False)
    if check and proc.returncode != 0:
        raise SystemExit('%s failed (%d): %s' % (' '.join(argv), proc.returncode, proc.stderr))
    return proc


def restore(batch):
    run('ipvsadm', '-C')
    proc = run('ipvsadm', '-R', data=batch, check=False)
    return {'rc': proc.returncode, 'stderr': proc.stderr}


def table_data(table):
    """A table as JSON: [[key, service, [real server, ...]], ...] sorted."""
    return json.loads(json.dumps(sorted([key, service, sorted(dests.values())] for key, (service, dests) in table.items())))


def ipvsadm_table():
    save = run('ipvsadm', '-S', '-n').stdout
    thresholds = run('ipvsadm', '-L', '-n', '--thresholds').stdout
    return save, ipvs.apply_thresholds(ipvs.parse_save(save), ipvs.parse_listing(thresholds))


def netlink_counters_data(counters):
    """Counters as ipvsadm's listings give them: [key, [5 stats], [[dest key, [5 stats], [active, inactive,
    persistent]], ...]]."""
    return sorted([list(key), list(stats), sorted([list(dkey), list(dc.stats), [dc.active_connections,
                   dc.inactive_connections, dc.persistent_connections]] for dkey, dc in dests.items())]
                  for key, (stats, dests) in counters.items())


def ipvsadm_counters_data():
    stats = ipvs.parse_listing(run('ipvsadm', '-L', '-n', '--stats', '--exact').stdout)
    # -Ln: Forward Weight ActiveConn InActConn (the method's name is not a number);
    # --persistent-conn: Weight PersistConn ActiveConn InActConn
    conns = ipvs.parse_listing(run('ipvsadm', '-L', '-n', '--exact').stdout)
    persist = ipvs.parse_listing(run('ipvsadm', '-L', '-n', '--persistent-conn').stdout)
    return sorted([list(key), numbers, sorted([list(dkey), dnumbers, [conns[key][1][dkey][-2], conns[key][1][dkey][-1],
                                                                      persist[key][1][dkey][1]]]
                                              for dkey, dnumbers in dests.items())]
                  for key, (numbers, dests) in stats.items())


def error_data(function):
    try:
        function()
    except ipvs_netlink.NetlinkError as exc:
        return {'class': type(exc).__name__, 'errno': exc.errno, 'message': str(exc),
                'unavailable': isinstance(exc, ipvs_netlink.IpvsUnavailable)}
    return None


def serve_http(listener):
    while True:
        conn, _peer = listener.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b'hello from the lab\n')


def traffic():
    """REQUESTS TCP connections to a VIP on lo whose real server is this node (dr to 127.0.0.1); the
    counters once the kernel's estimator has summed them up (every 2 s) and they stay put."""
    run('ip', 'addr', 'replace', TRAFFIC_VIP + '/32', 'dev', 'lo')
    restore('-A -t %s:80 -s rr\n-a -t %s:80 -r 127.0.0.1:80 -g -w 1\n' % (TRAFFIC_VIP, TRAFFIC_VIP))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('0.0.0.0', 80))     # dr delivers to the VIP itself, on this node
    listener.listen(16)
    threading.Thread(target=serve_http, args=(listener,), daemon=True).start()
    answers = []
    for _request in range(REQUESTS):
        with socket.create_connection((TRAFFIC_VIP, 80), timeout=5) as client:
            client.sendall(b'GET / HTTP/1.0\r\n\r\n')
            chunks = []
            while True:
                chunk = client.recv(1024)
                if not chunk:
                    break
                chunks.append(chunk)
            answers.append(b''.join(chunks).decode())
    previous = None
    for _attempt in range(20):
        now = netlink_counters_data(ipvs_netlink.dump(counters=True).counters)
        if now == previous and now and now[0][1][0] >= REQUESTS:
            break
        previous = now
        time.sleep(2.5)
    # ipvsadm's read, the netlink read, ipvsadm's again: both ipvsadm reads must agree for a fair compare
    for _attempt in range(5):
        before = ipvsadm_counters_data()
        netlink = netlink_counters_data(ipvs_netlink.dump(counters=True).counters)
        after = ipvsadm_counters_data()
        if before == after:
            break
    return {'answers': answers, 'requests': REQUESTS, 'netlink': netlink, 'ipvsadm': before,
            'ipvsadm_again': after}


def unprivileged():
    """The read as user nobody (no CAP_NET_ADMIN), in a child process."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(writer, json.dumps(error_data(ipvs_netlink.read_table)).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def ipvs_modules():
    with open('/proc/modules') as modules:
        return [line.split()[0] for line in modules if line.startswith('ip_vs')]


def unloaded():
    """Without ip_vs: the kernel loads it when asked for its family (the module's alias is
    net-pf-16-proto-16-family-IPVS); where it cannot (here: its module loader made /bin/false), the
    read fails with IpvsUnavailable, and works again once ip_vs is loaded."""
    run('ipvsadm', '-C')
    removal = run('modprobe', '-r', *ipvs_modules(), check=False)
    result = {'removal': removal.stderr, 'modules_left': ipvs_modules()}
    result['autoload_error'] = error_data(ipvs_netlink.dump)
    result['modules_after_autoload'] = ipvs_modules()
    run('modprobe', '-r', *ipvs_modules(), check=False)
    with open('/proc/sys/kernel/modprobe') as handle:
        loader = handle.read().strip()
    with open('/proc/sys/kernel/modprobe', 'w') as handle:
        handle.write('/bin/false\n')
    try:
        result['modules_before_read'] = ipvs_modules()
        result['error'] = error_data(ipvs_netlink.dump)
        result['modules_after_read'] = ipvs_modules()
    finally:
        with open('/proc/sys/kernel/modprobe', 'w') as handle:
            handle.write(loader + '\n')
    run('modprobe', 'ip_vs')
    after = ipvs_netlink.dump()
    result['after_modprobe'] = {'table': table_data(after.table), 'timeouts': after.timeouts}
    return result


def localnode():
    """A real server with the forwarding method "local node" (1), which ipvsadm cannot set but the
    kernel takes over netlink: ipvsadm -S prints it as -g, and both reads must say dr."""
    restore('-A -t 198.18.0.40:80 -s rr\n')
    nl = ipvs_netlink
    u16, u32, be16 = nl._U16.pack, nl._U32.pack, nl._BE16.pack
    address = socket.inet_aton('198.18.0.40') + bytes(12)
    service = (nl.attribute(nl.SVC_AF, u16(socket.AF_INET)) + nl.attribute(nl.SVC_PROTOCOL, u16(socket.IPPROTO_TCP))
               + nl.attribute(nl.SVC_ADDR, address) + nl.attribute(nl.SVC_PORT, be16(80)))
    dest = (nl.attribute(nl.DEST_ADDR, socket.inet_aton('198.18.1.40') + bytes(12)) + nl.attribute(nl.DEST_PORT, be16(80))
            + nl.attribute(nl.DEST_FWD_METHOD, u32(1)) + nl.attribute(nl.DEST_WEIGHT, u32(3))
            + nl.attribute(nl.DEST_U_THRESH, u32(0)) + nl.attribute(nl.DEST_L_THRESH, u32(0)))
    with nl.IpvsNetlink() as writer:
        seq = writer._send(writer.family, 0x4, 5,       # NLM_F_ACK, IPVS_CMD_NEW_DEST
                           nl.attribute(nl.IPVS_CMD_ATTR_SERVICE | nl.NLA_F_NESTED, service)
                           + nl.attribute(nl.IPVS_CMD_ATTR_DEST | nl.NLA_F_NESTED, dest))
        list(writer._replies(seq, 'adding a local-node real server'))
    save, table = ipvsadm_table()
    return {'save': save, 'ipvsadm_table': table_data(table), 'netlink_table': table_data(ipvs_netlink.read_table())}


def check():
    result = {'kernel': os.uname().release, 'ipvsadm': run('ipvsadm', '--version').stdout.strip()}
    result['restore'] = restore(EVERY_KIND)
    result['services_in_batch'] = EVERY_KIND.count('-A ')
    save, table = ipvsadm_table()
    result['save'] = save
    result['ipvsadm_table'] = table_data(table)
    result['netlink_table'] = table_data(ipvs_netlink.read_table())
    dumped = ipvs_netlink.dump(counters=True)
    result['dump_table'] = table_data(dumped.table)
    result['dump_counter_keys'] = sorted([list(key), sorted(list(dkey) for dkey in dests)]
                                         for key, (_stats, dests) in dumped.counters.items())

    run('ipvsadm', '--set', '901', '121', '301')
    line = run('ipvsadm', '-L', '--timeout').stdout
    numbers = [int(word) for word in line.split(':', 1)[1].split()]
    result['timeouts'] = {'set': [901, 121, 301], 'ipvsadm': dict(zip(('tcp', 'tcpfin', 'udp'), numbers)),
                          'netlink': ipvs_netlink.read_timeouts(), 'dump': ipvs_netlink.dump().timeouts}

    result['misprinted'] = {'restore': restore(MISPRINTED), 'save': run('ipvsadm', '-S', '-n').stdout,
                            'netlink_table': table_data(ipvs_netlink.read_table())}
    result['localnode'] = localnode()
    result['unprivileged'] = unprivileged()     # before traffic(), which starts a thread
    result['traffic'] = traffic()
    result['unloaded'] = unloaded()
    json.dump(result, sys.stdout, indent=1)


class Recorder:
    """A netlink socket that keeps what went each way, for the unit tests' replay."""

    def __init__(self, sock, events):
        self.sock, self.events = sock, events

    def sendto(self, data, address):
        self.events.append(['send', base64.b64encode(data).decode()])
        return self.sock.sendto(data, address)

    def recv(self, size, flags=0):
        data = self.sock.recv(size, flags)
        self.events.append(['recv', base64.b64encode(data).decode()])
        return data

    def close(self):
        self.sock.close()


def recorded(function):
    events = []
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, ipvs_netlink.NETLINK_GENERIC)
    try:
        with ipvs_netlink.IpvsNetlink(sock=Recorder(sock, events)) as reader:
            result = function(reader)
    except ipvs_netlink.NetlinkError as exc:
        result = {'class': type(exc).__name__, 'errno': exc.errno}
    return events, result


def capture(directory):
    """The unit tests' fixture: a real dump of EVERY_KIND (with counters, after some traffic on one
    service), what ipvsadm printed for the same table, and the kernel's answer without ip_vs."""
    data = {'kernel': os.uname().release, 'ipvsadm': run('ipvsadm', '--version').stdout.strip()}
    restore(EVERY_KIND)
    run('ipvsadm', '--set', '901', '121', '301')
    data['batch'] = EVERY_KIND
    data['save'] = run('ipvsadm', '-S', '-n').stdout
    data['thresholds'] = run('ipvsadm', '-L', '-n', '--thresholds').stdout
    data['stats'] = run('ipvsadm', '-L', '-n', '--stats', '--exact').stdout
    data['timeout'] = run('ipvsadm', '-L', '--timeout').stdout
    data['dump'], _result = recorded(lambda reader: reader.dump(counters=True))
    data['traffic'] = traffic()
    data['traffic_dump'], _result = recorded(lambda reader: reader.dump(counters=True))
    run('ipvsadm', '-C')
    run('modprobe', '-r', *ipvs_modules(), check=False)
    with open('/proc/sys/kernel/modprobe', 'w') as handle:
        handle.write('/bin/false\n')       # the lab's own kernel: gone at its halt
    data['unloaded'], result = recorded(lambda reader: reader.dump())
    assert result == {'class': 'IpvsUnavailable', 'errno': errno.ENOENT}, result
    path = os.path.join(directory, 'netlink_every_kind.json')
    with open(path, 'w') as handle:
        json.dump(data, handle, indent=0)
        handle.write('\n')
    print('captured into %s' % path)


if __name__ == '__main__':
    if sys.argv[1:2] == ['check']:
        check()
    elif sys.argv[1:2] == ['capture'] and len(sys.argv) == 3:
        capture(sys.argv[2])
    else:
        sys.exit(__doc__)
