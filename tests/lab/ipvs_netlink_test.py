"""The netlink reader (plugins/module_utils/ipvs_netlink.py) against the real IPVS of the lab kernel.

One lab boot runs tests/lab/ipvs_netlink_probe.py, which loads tables with `ipvsadm -R`, sends real
packets, unloads ip_vs, and prints what the netlink reader and what ipvsadm read each time; these
tests compare them. Nothing is mocked.

Run on the host, as root:  .venv/bin/pytest tests/lab/ipvs_netlink_test.py
"""

import errno
import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUN = os.path.join(HERE, 'run')
PYTHON = os.path.join(REPO, '.venv', 'bin', 'python')
PROBE = os.path.join(HERE, 'ipvs_netlink_probe.py')


@pytest.fixture(scope='module')
def lab():
    """What the probe saw, once for all the tests here (one boot of the lab)."""
    result = subprocess.run([RUN, '--', PYTHON, PROBE, 'check'], cwd=REPO, capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)


def rows(table, kind=None):
    """The table's [key, service, real servers] rows, of one kind of key ('addr', 'fwmark') if given."""
    return [row for row in table if kind is None or row[0][0] == kind]


def differences(netlink, ipvsadm):
    """The rows the two reads disagree on, for the failure message."""
    ours = {json.dumps(row[0]): row for row in netlink}
    theirs = {json.dumps(row[0]): row for row in ipvsadm}
    return '\n'.join('netlink: %s\nipvsadm: %s' % (ours.get(key), theirs.get(key))
                     for key in sorted(set(ours) | set(theirs)) if ours.get(key) != theirs.get(key))


def test_the_table_of_every_kind_loads_whole(lab):
    assert lab['restore'] == {'rc': 0, 'stderr': ''}
    assert len(lab['ipvsadm_table']) == lab['services_in_batch']


def test_the_table_covers_every_kind_of_service_and_real_server(lab):
    """So that the comparison below is not an empty one: what the kernel and ipvsadm took."""
    table = {json.dumps(key): (service, dests) for key, service, dests in lab['ipvsadm_table']}
    keys = [json.loads(key) for key in table]
    services = [service for service, _dests in table.values()]
    dests = {(json.loads(key)[1], tuple(dest[:2])): dest for key, (_service, ds) in table.items() for dest in ds}
    assert {key[2] for key in keys if key[0] == 'addr'} == {'tcp', 'udp', 'sctp'}
    assert {(key[0], key[1]) for key in keys} == {('addr', 'ipv4'), ('addr', 'ipv6'), ('fwmark', 'ipv4'),
                                                  ('fwmark', 'ipv6')}
    assert {service[1] for service in services} >= {'rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed',
                                                    'nq', 'fo', 'ovf', 'mh'}
    flags = {flag for service in services for flag in service[2]}
    assert flags == {'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port', 'flag-1', 'flag-3'}
    masks = {service[4] for service in services}
    assert {'255.255.255.0', '255.255.0.0', '64', '48'} <= masks
    assert any(service[3] and service[4] is None for service in services)       # the family's default mask
    assert 'sip' in {service[5] for service in services}
    assert any(service[6] for service in services)                              # one-packet
    forwardings = {dest[2] for dest in dests.values()}
    assert forwardings == {'nat', 'dr', 'tunnel'}
    # IPv4 real servers of IPv6 services (tunnel), and tunnel types with their options
    assert ('ipv6', ('198.18.1.20', 443)) in dests and ('ipv6', ('198.18.1.40', 0)) in dests
    extras = {tuple(dest[6]) for dest in dests.values()}
    assert {('--tun-type', 'gue', '--tun-port', '6080', '--tun-nocsum'),
            ('--tun-type', 'gue', '--tun-port', '65534', '--tun-csum'),
            ('--tun-type', 'gue', '--tun-port', '258', '--tun-remcsum'),
            ('--tun-type', 'gre', '--tun-csum'), ('--tun-type', 'gre', '--tun-nocsum'), ()} == extras
    assert any(dest[4] and dest[5] for dest in dests.values())                  # upper and lower thresholds
    assert any(dest[4] == 2147483647 for dest in dests.values())
    assert {dest[3] for dest in dests.values()} >= {0, 65535}                    # weights
    assert any(dest[1] > 255 and dest[1] != key[4] for key in keys if key[0] == 'addr'
               for dest in table[json.dumps(key)][1])                            # a mapped port, both bytes used


def test_netlink_read_equals_ipvsadm_save_with_thresholds(lab):
    assert lab['netlink_table'] == lab['ipvsadm_table'], differences(lab['netlink_table'], lab['ipvsadm_table'])


def test_dump_with_counters_reads_the_same_table_and_keys_its_counters_like_it(lab):
    assert lab['dump_table'] == lab['ipvsadm_table'], differences(lab['dump_table'], lab['ipvsadm_table'])
    assert lab['dump_counter_keys'] == [[key, sorted(dest[:2] for dest in dests)]
                                        for key, _service, dests in lab['ipvsadm_table']]


def test_timeouts_equal_ipvsadm_timeout_after_set(lab):
    timeouts = lab['timeouts']
    wanted = dict(zip(('tcp', 'tcpfin', 'udp'), timeouts['set']))
    assert timeouts['ipvsadm'] == wanted
    assert timeouts['netlink'] == wanted
    assert timeouts['dump'] == wanted


def test_counters_after_real_traffic_equal_ipvsadm_stats_exact(lab):
    traffic = lab['traffic']
    assert traffic['answers'] == ['hello from the lab\n'] * traffic['requests']
    assert traffic['ipvsadm'] == traffic['ipvsadm_again'], 'the counters moved while ipvsadm read them'
    assert traffic['netlink'] == traffic['ipvsadm']
    [(key, stats, [(dkey, dstats, conns)])] = traffic['netlink']
    assert key == ['addr', 'ipv4', 'tcp', '198.18.0.160', 80] and dkey == ['127.0.0.1', 80]
    assert stats[0] == dstats[0] == traffic['requests']          # connections
    assert stats[1] >= 3 * traffic['requests'] and stats[3] > 0   # packets and bytes in
    assert sum(conns) == traffic['requests']                      # active + inactive (+ persistent)


def test_netlink_keeps_what_ipvsadm_save_misprints(lab):
    """ipvsadm -S drops flag-3 of sh and mh (a bare "-b " for it alone) and prints firewall marks from
    2^31 on as negative numbers; the netlink read has what the kernel has."""
    misprinted = lab['misprinted']
    assert misprinted['restore'] == {'rc': 0, 'stderr': ''}
    assert '-A -t 198.18.0.30:80 -s sh -b \n' in misprinted['save']
    assert '-A -t 198.18.0.31:80 -s mh -b mh-port\n' in misprinted['save']
    assert '-A -f -1 -s rr\n' in misprinted['save']
    services = {json.dumps(key): service for key, service, _dests in misprinted['netlink_table']}
    assert services[json.dumps(['addr', 'ipv4', 'tcp', '198.18.0.30', 80])][2] == ['flag-3']
    assert services[json.dumps(['addr', 'ipv4', 'tcp', '198.18.0.31', 80])][2] == ['flag-3', 'mh-port']
    assert services[json.dumps(['fwmark', 'ipv4', 4294967295])][1] == 'rr'
    assert services[json.dumps(['fwmark', 'ipv6', 2147483648])][1] == 'wrr'


def test_a_local_node_real_server_reads_as_dr_as_ipvsadm_save_prints_it(lab):
    """Forwarding method 1 ("local node"), set over netlink (ipvsadm has no switch for it)."""
    localnode = lab['localnode']
    assert '-a -t 198.18.0.40:80 -r 198.18.1.40:80 -g -w 3\n' in localnode['save']
    assert localnode['netlink_table'] == localnode['ipvsadm_table']
    assert localnode['netlink_table'][0][2] == [['198.18.1.40', 80, 'dr', 3, 0, 0, []]]


def test_read_without_cap_net_admin_fails_with_eperm(lab):
    error = lab['unprivileged']
    assert error['class'] == 'NetlinkError' and not error['unavailable']
    assert error['errno'] == errno.EPERM
    assert 'CAP_NET_ADMIN' in error['message']


def test_kernel_loads_ip_vs_itself_when_the_reader_asks_for_its_family(lab):
    unloaded = lab['unloaded']
    assert unloaded['modules_left'] == [], unloaded['removal']
    assert unloaded['autoload_error'] is None
    assert unloaded['modules_after_autoload'] == ['ip_vs']


def test_read_without_ip_vs_raises_ipvs_unavailable_saying_load_it(lab):
    unloaded = lab['unloaded']
    assert unloaded['modules_before_read'] == []
    error = unloaded['error']
    assert error is not None, 'the read worked without ip_vs'
    assert error['class'] == 'IpvsUnavailable' and error['unavailable']
    assert error['errno'] == errno.ENOENT
    assert 'load the ip_vs module (modprobe ip_vs)' in error['message']
    assert unloaded['modules_after_read'] == []


def test_read_works_again_once_ip_vs_is_loaded(lab):
    after = lab['unloaded']['after_modprobe']
    assert after == {'table': [], 'timeouts': {'tcp': 900, 'tcpfin': 120, 'udp': 300}}
