"""The netlink reader's parsing, over replies captured from the lab kernel's real IPVS.

fixtures/netlink_every_kind.json holds, for one table of every kind (tests/lab/ipvs_netlink_probe.py
capture, Linux 6.1, ipvsadm 1.31): every datagram the reader sent and received during a dump, what
ipvsadm printed for the same table, and the kernel's answer without ip_vs. The replay socket hands the
reader those datagrams and checks that it sends exactly what it sent then. No kernel is needed here;
tests/lab/ipvs_netlink_test.py proves the reader against the live one.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import struct

import pytest

from ansible_collections.lvs.cluster.plugins.module_utils import ipvs, ipvs_netlink as nl

from conftest import FIXTURES

with open(os.path.join(FIXTURES, 'netlink_every_kind.json')) as _handle:
    CAPTURED = json.load(_handle)


class Replay:
    """A netlink socket that answers with captured datagrams, in their order."""

    def __init__(self, events, edit=None):
        self.events = [(way, base64.b64decode(data)) for way, data in events]
        self.edit = edit or (lambda data: data)
        self.closed = False

    def sendto(self, data, address):
        way, sent = self.events.pop(0)
        assert (way, address) == ('send', (0, 0))
        assert data == sent, 'the reader asks otherwise than it did when the replies were captured'
        return len(data)

    def recv(self, size, flags=0):
        way, data = self.events.pop(0)
        assert way == 'recv'
        assert flags == nl.socket.MSG_TRUNC and size >= len(data)
        return self.edit(data)

    def close(self):
        self.closed = True


def replayed(events, edit=None, **options):
    replay = Replay(events, edit)
    with nl.IpvsNetlink(sock=replay) as reader:
        result = reader.dump(**options)
    assert replay.events == [] and replay.closed
    return result


def ipvsadm_table():
    return ipvs.apply_thresholds(ipvs.parse_save(CAPTURED['save']), ipvs.parse_listing(CAPTURED['thresholds']))


def messages(kind):
    """(datagram, start, end) of every IPVS_CMD_ATTR_SERVICE or _DEST nest received in the dump."""
    found = []
    for way, text in CAPTURED['dump']:
        data = base64.b64decode(text)
        off = 0
        while way == 'recv' and off < len(data):
            length, mtype = struct.unpack_from('=IH', data, off)
            if mtype > nl.GENL_ID_CTRL and length > 20:      # IPVS's own messages
                pos = nl.nested(data, off + 20, off + length, kind)
                if pos:
                    found.append((data, pos[0], pos[1]))
            off += (length + 3) & ~3
    return found


def service_of(table, key):
    return table[key][0]


# --- the whole dump ---------------------------------------------------------------------------

def test_dump_equals_what_ipvsadm_printed_for_the_same_table():
    dump = replayed(CAPTURED['dump'], counters=True)
    assert dump.table == ipvsadm_table()
    assert len(dump.table) == CAPTURED['batch'].count('-A ')


def test_dump_without_counters_reads_the_same_table_and_no_counters():
    dump = replayed(CAPTURED['dump'], counters=False)
    assert dump.table == ipvsadm_table()
    assert dump.counters is None


def test_timeouts_equal_ipvsadm_timeout():
    dump = replayed(CAPTURED['dump'])
    numbers = [int(word) for word in CAPTURED['timeout'].split(':')[1].split()]
    assert dump.timeouts == dict(zip(('tcp', 'tcpfin', 'udp'), numbers)) == {'tcp': 901, 'tcpfin': 121, 'udp': 301}


def test_counters_are_keyed_like_the_table_and_equal_ipvsadm_stats_exact():
    dump = replayed(CAPTURED['dump'], counters=True)
    listing = ipvs.parse_listing(CAPTURED['stats'])
    assert set(dump.counters) == set(dump.table) == set(listing)
    for key, (stats, dests) in dump.counters.items():
        assert set(dests) == set(dump.table[key][1])
        assert list(stats) == listing[key][0]
        assert {dkey: list(counters.stats) for dkey, counters in dests.items()} == listing[key][1]


def test_counters_after_real_traffic_equal_ipvsadm_stats_exact_and_connections():
    dump = replayed(CAPTURED['traffic_dump'], counters=True)
    [[key, stats, [[dkey, dstats, conns]]]] = CAPTURED['traffic']['ipvsadm']
    service_stats, dests = dump.counters[tuple(key)]
    counters = dests[tuple(dkey)]
    assert list(service_stats) == stats and list(counters.stats) == dstats
    assert [counters.active_connections, counters.inactive_connections, counters.persistent_connections] == conns
    assert counters.stats.connections == CAPTURED['traffic']['requests'] and counters.stats.bytes_out > 0


def test_the_dump_asks_for_each_services_real_servers_by_its_identity():
    """Each IPVS_CMD_GET_DEST names its service as the service dump gave it: AF, PROTOCOL, ADDR, PORT or AF, FWMARK."""
    names = []
    for way, text in CAPTURED['dump']:
        data = base64.b64decode(text)
        if way == 'send' and data[16] == nl.IPVS_CMD_GET_DEST:
            start, end = nl.nested(data, 20, len(data), nl.IPVS_CMD_ATTR_SERVICE)
            types, p = [], start
            while p < end:
                alen, atype = struct.unpack_from('=HH', data, p)
                types.append(atype)
                p += (alen + 3) & ~3
            names.append(tuple(types))
    assert len(names) == len(ipvsadm_table())
    assert set(names) == {(nl.SVC_AF, nl.SVC_PROTOCOL, nl.SVC_ADDR, nl.SVC_PORT), (nl.SVC_AF, nl.SVC_FWMARK)}


# --- the kernel's encoding ----------------------------------------------------------------------

def test_ipv4_netmask_is_network_order_and_ipv6_netmask_a_host_order_prefix_length():
    table = replayed(CAPTURED['dump']).table
    assert service_of(table, ('addr', 'ipv4', 'tcp', '198.18.0.10', 80)).persistent_netmask == '255.255.255.0'
    assert service_of(table, ('fwmark', 'ipv4', 7)).persistent_netmask == '255.255.0.0'
    assert service_of(table, ('addr', 'ipv6', 'tcp', '2001:2::1', 443)).persistent_netmask == '64'
    assert service_of(table, ('addr', 'ipv6', 'tcp', '2001:2:0:ffff::1', 80)).persistent_netmask == '48'
    # the family's default (/32, /128) and a service that is not persistent: None, as ipvs.parse_rule gives
    assert service_of(table, ('addr', 'ipv4', 'tcp', '198.18.0.17', 80))[3:5] == (100, None)
    assert service_of(table, ('addr', 'ipv6', 'sctp', '2001:2::1', 9999))[3:5] == (60, None)
    assert service_of(table, ('fwmark', 'ipv6', 9))[3:5] == (0, None)


def test_ports_and_tunnel_ports_are_big_endian():
    table = replayed(CAPTURED['dump']).table
    assert (('198.18.1.13', 258)) in table[('addr', 'ipv4', 'tcp', '198.18.0.10', 80)][1]
    assert ('198.18.1.18', 65535) in table[('addr', 'ipv4', 'tcp', '198.18.0.18', 65535)][1]
    dns = table[('addr', 'ipv4', 'udp', '198.18.0.10', 53)][1]
    assert dns[('198.18.1.13', 53)].extra == ('--tun-type', 'gue', '--tun-port', '258', '--tun-remcsum')
    assert dns[('198.18.1.12', 53)].extra == ('--tun-type', 'gue', '--tun-port', '65534', '--tun-csum')


def test_real_servers_have_their_own_family_and_ipv6_addresses_are_compressed():
    table = replayed(CAPTURED['dump']).table
    dests = table[('addr', 'ipv6', 'tcp', '2001:2::1', 443)][1]
    assert set(dests) == {('198.18.1.20', 443), ('198.18.1.21', 443), ('2001:2::2', 443), ('2001:2::22', 443),
                          ('2001:2:0:1:2:3:4:5', 8443)}
    assert dests[('198.18.1.20', 443)][2:] == ('tunnel', 5, 0, 0, ())      # ipip, the default: no options
    assert dests[('2001:2:0:1:2:3:4:5', 8443)][2:] == ('nat', 1, 10, 2, ())


def test_scheduler_flags_get_the_schedulers_names_and_flags_the_kernel_sets():
    table = replayed(CAPTURED['dump']).table
    assert service_of(table, ('fwmark', 'ipv4', 7)).scheduler_flags == ('sh-fallback', 'sh-port')
    assert service_of(table, ('addr', 'ipv4', 'tcp', '198.18.0.15', 80)).scheduler_flags == ('mh-fallback', 'mh-port')
    assert service_of(table, ('addr', 'ipv4', 'tcp', '198.18.0.16', 80)).scheduler_flags == ('flag-1', 'flag-3')
    assert service_of(table, ('addr', 'ipv4', 'udp', '198.18.0.10', 53)).one_packet is True
    assert service_of(table, ('addr', 'ipv4', 'udp', '198.18.0.11', 5060)).persistence_engine == 'sip'


@pytest.mark.parametrize('counters', [False, True])
def test_real_servers_read_in_one_unpack_equal_those_read_attribute_by_attribute(counters):
    dests = messages(nl.IPVS_CMD_ATTR_DEST)
    layout = nl._DestLayout(*dests[0], counters)
    assert layout.ok
    for data, start, end in dests:
        assert layout.read(data, start, end) == nl._dest_fields(data, start, end, 0, counters)


def test_a_real_server_laid_out_otherwise_is_read_attribute_by_attribute():
    """Swap two 8-byte attributes of each real server after the first: the one-unpack layout no longer
    fits those, and the dump still reads them right."""
    seen = []

    def swap_port_and_method(data):
        data = bytearray(data)
        off = 0
        while off < len(data):
            length, mtype = struct.unpack_from('=IH', data, off)
            pos = nl.nested(data, off + 20, off + length, nl.IPVS_CMD_ATTR_DEST) if mtype > nl.GENL_ID_CTRL else None
            if pos:
                seen.append(pos)
                if len(seen) > 1:
                    port = pos[0] + 20                        # after ADDR (4 + 16)
                    assert struct.unpack_from('=HH', data, port)[1] == nl.DEST_PORT
                    data[port:port + 16] = data[port + 8:port + 16] + data[port:port + 8]
            off += (length + 3) & ~3
        return bytes(data)

    layout_reads = []
    original = nl._DestLayout.read

    def counting(self, *args):
        fields = original(self, *args)
        layout_reads.append(fields is not None)
        return fields

    nl._DestLayout.read = counting
    try:
        dump = replayed(CAPTURED['dump'], edit=swap_port_and_method, counters=True)
    finally:
        nl._DestLayout.read = original
    assert dump.table == ipvsadm_table()
    assert layout_reads[0] is True and not any(layout_reads[1:]) and len(seen) > 10


# --- errors -------------------------------------------------------------------------------------

def test_no_ipvs_family_raises_ipvs_unavailable_saying_load_ip_vs():
    with pytest.raises(nl.IpvsUnavailable, match=r'load the ip_vs module \(modprobe ip_vs\)') as caught:
        nl.IpvsNetlink(sock=Replay(CAPTURED['unloaded']))
    assert caught.value.errno == errno.ENOENT


def test_kernel_errors_raise_netlink_error_with_their_errno():
    """The captured error reply, its errno made EPERM: a NetlinkError that says what it needs, not IpvsUnavailable."""
    def eperm(data):
        return data[:16] + struct.pack('=i', -errno.EPERM) + data[20:]

    with pytest.raises(nl.NetlinkError, match='CAP_NET_ADMIN') as caught:
        nl.IpvsNetlink(sock=Replay(CAPTURED['unloaded'], edit=eperm))
    assert caught.value.errno == errno.EPERM and not isinstance(caught.value, nl.IpvsUnavailable)


def test_an_attribute_shorter_than_its_header_raises_instead_of_looping():
    data, start, end = messages(nl.IPVS_CMD_ATTR_SERVICE)[0]
    broken = data[:start] + struct.pack('=HH', 0, nl.SVC_AF) + data[start + 4:]
    with pytest.raises(nl.NetlinkError, match='shorter than its header'):
        nl.parse_service(broken, start, end)
    data, start, end = messages(nl.IPVS_CMD_ATTR_DEST)[0]
    broken = data[:start] + struct.pack('=HH', 2, nl.DEST_ADDR) + data[start + 4:]
    with pytest.raises(nl.NetlinkError, match='shorter than its header'):
        nl.parse_dest(broken, start, end, 2)


def test_a_message_longer_than_its_datagram_raises():
    def cut(data):
        return data[:len(data) // 2] if len(data) > 1000 else data

    with pytest.raises(nl.NetlinkError, match='longer than its datagram'):
        replayed(CAPTURED['dump'], edit=cut)
