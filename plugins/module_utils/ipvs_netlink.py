# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The IPVS table read straight from the kernel over generic netlink, in this process.

One ``dump()`` reads everything a module asks for in one pass over one socket: the timeouts and
the services (sent together), then each service's real servers (one dump each: the kernel has no
dump of them all), instead of running ``ipvsadm -S -n``, ``ipvsadm -L -n --thresholds`` and
``ipvsadm -L --timeout``. It returns exactly the shapes of ``ipvs.py``.

- ``dump(counters=False, timeouts=True)`` -> ``Dump(table, timeouts, counters)``:
  ``table`` is {service key: (ipvs.Service, {(address, port): ipvs.RealServer})}, equal to
  ``ipvs.apply_thresholds(ipvs.parse_save(ipvsadm -Sn), ipvs.parse_listing(ipvsadm -Ln --thresholds))``
  for the same kernel table; ``timeouts`` is {'tcp': s, 'tcpfin': s, 'udp': s} (``ipvsadm -L
  --timeout``), None when not asked; ``counters``, None unless asked, is keyed like the table:
  {service key: (Stats, {(address, port): DestCounters})} (``ipvsadm -Ln --stats --exact`` and the
  connection columns of ``ipvsadm -Ln``).
- ``read_table()`` and ``read_timeouts()``: one part only.
- ``IpvsUnavailable`` (a ``NetlinkError``): no IPVS to talk to - the kernel knows no "IPVS"
  generic netlink family and could not load ip_vs for it (asked for the family, the kernel loads the
  module itself where it can: its alias is net-pf-16-proto-16-family-IPVS), or no generic netlink
  socket can be opened. The caller says "load the ip_vs module" or falls back to ipvsadm.
  ``NetlinkError``: the kernel refused (``errno`` set: EPERM without CAP_NET_ADMIN) or answered
  something this cannot read.

Where ipvsadm 1.31 misprints the table, this reads what the kernel has: flag-3 of sh and mh
(``-S`` leaves it out, a bare ``-b `` when it is alone) and firewall marks from 2^31 on (``-S``
prints them as negative numbers). A service removed between the dump of the services and the dump
of its real servers comes with none (the kernel ends that dump without an error).

The kernel's encoding (net/netfilter/ipvs/ip_vs_ctl.c, include/uapi/linux/ip_vs.h), as read here:
addresses are 16 bytes whatever the family (IPv4 in the first 4); ports (service, real server,
tunnel) are big-endian, every other number is in the host's order; a real server's family is its
own attribute (IPv4 real servers of an IPv6 service, by tunnel); the persistence netmask is the
32-bit word its setter gave - an IPv4 mask in network order, but for IPv6 a prefix length as a
host-order integer (libipvs's convention, which the kernel checks as 1-128); nests carry no
NLA_F_NESTED flag; counters come twice, 32-bit (STATS) and 64-bit (STATS64), and 64 is used.

Only the standard library: this runs on the managed hosts (Python 3.9 and later), Linux only.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import operator
import os
import socket
import struct
from collections import namedtuple

from ansible_collections.lvs.cluster.plugins.module_utils.ipvs import RealServer, Service, describe_key

# ---------------------------------------------------------------------------------------------
# the wire: netlink, generic netlink, and IPVS's attributes (linux/netlink.h, genetlink.h, ip_vs.h)

NETLINK_GENERIC = 16
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP = 0x1, 0x2, 0x300
NLMSG_ERROR, NLMSG_DONE, _NLMSG_MIN_TYPE = 2, 3, 0x10
NLA_F_NESTED = 0x8000
GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 0x10, 3, 1, 2
IPVS_GENL_NAME, IPVS_GENL_VERSION = b'IPVS', 1
IPVS_CMD_GET_SERVICE, IPVS_CMD_GET_DEST, IPVS_CMD_GET_CONFIG = 4, 8, 13
IPVS_CMD_ATTR_SERVICE, IPVS_CMD_ATTR_DEST = 1, 2
IPVS_CMD_ATTR_TIMEOUT_TCP, IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, IPVS_CMD_ATTR_TIMEOUT_UDP = 4, 5, 6
(SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK, SVC_SCHED_NAME, SVC_FLAGS, SVC_TIMEOUT,
 SVC_NETMASK, SVC_STATS, SVC_PE_NAME, SVC_STATS64) = range(1, 13)
(DEST_ADDR, DEST_PORT, DEST_FWD_METHOD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH,
 DEST_ACTIVE_CONNS, DEST_INACT_CONNS, DEST_PERSIST_CONNS, DEST_STATS, DEST_ADDR_FAMILY,
 DEST_STATS64, DEST_TUN_TYPE, DEST_TUN_PORT, DEST_TUN_FLAGS) = range(1, 16)
STATS_CONNS, STATS_OUTBYTES = 1, 5       # CONNS, INPKTS, OUTPKTS, INBYTES, OUTBYTES; then rates

IP_VS_SVC_F_PERSISTENT, IP_VS_SVC_F_ONEPACKET = 0x1, 0x4
IP_VS_CONN_F_FWD_MASK, IP_VS_CONN_F_MASQ, IP_VS_CONN_F_TUNNEL = 0x7, 0, 2
_TYPE_MASK = 0x3fff                       # an attribute's type without NLA_F_NESTED, NLA_F_NET_BYTEORDER

_NLMSG = struct.Struct('=IHHI')           # nlmsghdr: length, type, flags, seq (the port id unread)
_REQUEST = struct.Struct('=IHHIIBBxx')    # nlmsghdr + genlmsghdr
_ATTR = struct.Struct('=HH')              # nlattr: length, type
_U16 = struct.Struct('=H')
_U32 = struct.Struct('=I')
_U64 = struct.Struct('=Q')
_I32 = struct.Struct('=i')
_BE16 = struct.Struct('>H')
_HEADERS = 20                             # nlmsghdr (16) + genlmsghdr (4)
_BUFFER = 65536    # the kernel fills dump datagrams up to 32 KiB when the reader's buffer allows

_PROTOCOLS = {socket.IPPROTO_TCP: 'tcp', socket.IPPROTO_UDP: 'udp', 132: 'sctp'}
_FAMILIES = {socket.AF_INET: 'ipv4', socket.AF_INET6: 'ipv6'}
# ipvsadm -S prints masquerading as -m, tunneling as -i and all else (direct routing, "local
# node", anything unknown) as -g; ipvs.parse_rule reads those as nat, tunnel and dr.
_FORWARDING = {IP_VS_CONN_F_MASQ: 'nat', IP_VS_CONN_F_TUNNEL: 'tunnel'}
# The scheduler flags SCHED1, SCHED2, SCHED3 by the names ipvs.parse_rule gives them. ipvsadm 1.31
# leaves flag-3 of sh and mh out of -S (and prints a bare "-b " for it alone); here it is kept as
# the kernel has it, so a plan that does not want it edits the service.
_SCHED_BITS = (0x8, 0x10, 0x20)
_SCHED_FLAGS = {'sh': ('sh-fallback', 'sh-port', 'flag-3'), 'mh': ('mh-fallback', 'mh-port', 'flag-3')}
_GENERIC_SCHED_FLAGS = ('flag-1', 'flag-2', 'flag-3')
# A tunnel real server's options as ipvsadm -S prints them after -i, as ipvs.parse_rule keeps them
# (ipip, the default, as none at all; an unknown type as none, as ipvsadm does).
_TUN_GUE, _TUN_GRE = 1, 2
_TUN_FLAGS = {0: ('--tun-nocsum',), 1: ('--tun-csum',), 2: ('--tun-remcsum',), 3: ('--tun-csum', '--tun-remcsum')}

# Counters as ipvsadm -Ln --stats --exact shows them, of a service or of a real server.
Stats = namedtuple('Stats', 'connections packets_in packets_out bytes_in bytes_out')
# A real server's counters: its Stats and its connections now (ipvsadm -Ln, --persistent-conn).
DestCounters = namedtuple('DestCounters', 'stats active_connections inactive_connections persistent_connections')
# What dump() returns: the table in ipvs.py's shape; the timeouts and the counters, or None.
Dump = namedtuple('Dump', 'table timeouts counters')

_NO_STATS = Stats(0, 0, 0, 0, 0)


class NetlinkError(Exception):
    """The kernel refused a request (errno set), or answered something this module cannot read."""

    def __init__(self, message, errno=None):
        super().__init__(message)
        self.errno = errno


class IpvsUnavailable(NetlinkError):
    """No IPVS to talk to: ip_vs is not loaded (no "IPVS" genetlink family), or no netlink socket."""


def _refused(what, code):
    hint = ' (reading IPVS needs root: CAP_NET_ADMIN)' if code in (_errno.EPERM, _errno.EACCES) else ''
    return NetlinkError('%s: %s%s' % (what, os.strerror(code), hint), errno=code)


def _bad(what):
    return NetlinkError('cannot read the kernel\'s answer: %s' % what)


# ---------------------------------------------------------------------------------------------
# parsing: bytes in, ipvs.py's shapes out (pure; the unit tests feed it replies captured in the lab)

def _stats(buf, p, end):
    """A STATS or STATS64 nest -> Stats (the rates are skipped)."""
    values = [0, 0, 0, 0, 0]
    while p < end:
        alen, atype = _ATTR.unpack_from(buf, p)
        if alen < 4:
            raise _bad('an attribute shorter than its header')
        atype &= _TYPE_MASK
        if STATS_CONNS <= atype <= STATS_OUTBYTES:
            values[atype - 1] = (_U64 if alen == 12 else _U32).unpack_from(buf, p + 4)[0]
        p += (alen + 3) & ~3
    return Stats(*values)


def _address(family, raw, cache):
    """16 address bytes -> the address as ipvs.split_endpoint gives it (IPv6 compressed)."""
    if family == socket.AF_INET:
        return socket.inet_ntoa(raw[:4])
    if family == socket.AF_INET6:
        text = cache.get(raw)
        if text is None:
            text = cache[raw] = ipaddress.IPv6Address(bytes(raw[:16])).compressed
        return text
    raise _bad('an address of unknown family %d' % family)


def parse_service(buf, p, end, cache=None, counters=False):
    """One IPVS_CMD_ATTR_SERVICE nest, buf[p:end] ->
    (ipvs.Service, its identity as attributes for IPVS_CMD_GET_DEST, its family number, Stats or None)."""
    cache = {} if cache is None else cache
    af = protocol = port = fwmark = netmask = stats = stats64 = engine = None
    addr, scheduler, flags, timeout = b'', '', 0, 0
    ident = []
    while p < end:
        alen, atype = _ATTR.unpack_from(buf, p)
        if alen < 4:
            raise _bad('an attribute shorter than its header')
        atype &= _TYPE_MASK
        step = (alen + 3) & ~3
        if atype <= SVC_FWMARK:
            ident.append(buf[p:p + step])
            if atype == SVC_AF:
                af = _U16.unpack_from(buf, p + 4)[0]
            elif atype == SVC_PROTOCOL:
                protocol = _U16.unpack_from(buf, p + 4)[0]
            elif atype == SVC_ADDR:
                addr = buf[p + 4:p + alen]
            elif atype == SVC_PORT:
                port = _BE16.unpack_from(buf, p + 4)[0]
            elif atype == SVC_FWMARK:
                fwmark = _U32.unpack_from(buf, p + 4)[0]
        elif atype == SVC_SCHED_NAME:
            scheduler = buf[p + 4:p + alen].split(b'\0', 1)[0].decode('ascii')
        elif atype == SVC_PE_NAME:
            engine = buf[p + 4:p + alen].split(b'\0', 1)[0].decode('ascii') or None
        elif atype == SVC_FLAGS:
            flags = _U32.unpack_from(buf, p + 4)[0]      # struct ip_vs_flags: flags, then mask
        elif atype == SVC_TIMEOUT:
            timeout = _U32.unpack_from(buf, p + 4)[0]
        elif atype == SVC_NETMASK:
            netmask = buf[p + 4:p + 8]
        elif counters and atype == SVC_STATS64:
            stats64 = _stats(buf, p + 4, p + alen)
        elif counters and atype == SVC_STATS:
            stats = _stats(buf, p + 4, p + alen)
        p += step
    family = _FAMILIES.get(af)
    if family is None:
        raise _bad('a service of unknown address family %r' % (af,))
    if fwmark:
        key = ('fwmark', family, fwmark)
    elif protocol is not None and port is not None and len(addr) >= 4:
        key = ('addr', family, _PROTOCOLS.get(protocol) or str(protocol), _address(af, addr, cache), port)
    else:
        raise _bad('a service with neither a firewall mark nor protocol, address and port')
    # As ipvsadm -S: -p (and -M) only for a persistent service; -M only if not the family's default.
    persistent = timeout if flags & IP_VS_SVC_F_PERSISTENT else 0
    mask = None
    if persistent and netmask is not None and len(netmask) == 4:
        if af == socket.AF_INET6:
            plen = _U32.unpack(netmask)[0]
            mask = None if plen == 128 else str(plen)
        elif netmask != b'\xff\xff\xff\xff':
            mask = socket.inet_ntoa(netmask)
    names = _SCHED_FLAGS.get(scheduler, _GENERIC_SCHED_FLAGS)
    sched_flags = tuple(sorted(name for bit, name in zip(_SCHED_BITS, names) if flags & bit))
    service = Service(key, scheduler, sched_flags, persistent, mask, engine, bool(flags & IP_VS_SVC_F_ONEPACKET))
    return service, b''.join(ident), af, ((stats64 or stats or _NO_STATS) if counters else None)


# A real server as read from its nest, before it becomes a RealServer: these fields, in this order.
_DEST_FIELDS = (DEST_ADDR, DEST_PORT, DEST_FWD_METHOD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH,
                DEST_ADDR_FAMILY, DEST_TUN_TYPE, DEST_TUN_PORT, DEST_TUN_FLAGS)
_DEST_COUNTERS = (DEST_ACTIVE_CONNS, DEST_INACT_CONNS, DEST_PERSIST_CONNS)


def _dest_fields(buf, p, end, service_af, counters):
    """One IPVS_CMD_ATTR_DEST nest, attribute by attribute -> the fields make_dest takes."""
    addr = b''
    af = service_af
    port = fwd = weight = upper = lower = tun_type = tun_port = tun_flags = 0
    active = inactive = persistent = 0
    stats = stats64 = None
    while p < end:
        alen, atype = _ATTR.unpack_from(buf, p)
        if alen < 4:
            raise _bad('an attribute shorter than its header')
        atype &= _TYPE_MASK
        if atype == DEST_ADDR:
            addr = buf[p + 4:p + alen]
        elif atype == DEST_PORT:
            port = _BE16.unpack_from(buf, p + 4)[0]
        elif atype == DEST_FWD_METHOD:
            fwd = _U32.unpack_from(buf, p + 4)[0]
        elif atype == DEST_WEIGHT:
            weight = _I32.unpack_from(buf, p + 4)[0]
        elif atype == DEST_U_THRESH:
            upper = _U32.unpack_from(buf, p + 4)[0]
        elif atype == DEST_L_THRESH:
            lower = _U32.unpack_from(buf, p + 4)[0]
        elif atype == DEST_ADDR_FAMILY:
            af = _U16.unpack_from(buf, p + 4)[0]
        elif atype == DEST_TUN_TYPE:
            tun_type = buf[p + 4]
        elif atype == DEST_TUN_PORT:
            tun_port = _BE16.unpack_from(buf, p + 4)[0]
        elif atype == DEST_TUN_FLAGS:
            tun_flags = _U16.unpack_from(buf, p + 4)[0]
        elif counters:
            if atype == DEST_ACTIVE_CONNS:
                active = _U32.unpack_from(buf, p + 4)[0]
            elif atype == DEST_INACT_CONNS:
                inactive = _U32.unpack_from(buf, p + 4)[0]
            elif atype == DEST_PERSIST_CONNS:
                persistent = _U32.unpack_from(buf, p + 4)[0]
            elif atype == DEST_STATS64:
                stats64 = _stats(buf, p + 4, p + alen)
            elif atype == DEST_STATS:
                stats = _stats(buf, p + 4, p + alen)
        p += (alen + 3) & ~3
    if len(addr) < 4:
        raise _bad('a real server without an address')
    fields = (addr, port, fwd, weight, upper, lower, af, tun_type, tun_port, tun_flags)
    if counters:
        return fields + (active, inactive, persistent) + tuple(stats64 or stats or _NO_STATS)
    return fields


class _DestLayout:
    """The attributes of one real server's nest as the kernel laid them out, as one struct.

    The kernel writes every real server of a dump alike (same attributes, order and sizes), so the
    others are read with one unpack each as long as their attribute headers are the same; one that
    differs is read attribute by attribute. Ports are read as two bytes each (big-endian)."""

    def __init__(self, buf, p, end, counters):
        self.size = end - p
        self._fmt, self._headers, self._where, self._count = ['='], [], {}, 0
        self._walk(buf, p, end, counters, 0)
        wanted = [(0, field) for field in _DEST_FIELDS]
        if counters:
            wanted += [(0, field) for field in _DEST_COUNTERS] + [(DEST_STATS64, field) for field in range(1, 6)]
        self.ok = all(field in self._where for field in wanted) and len(self._headers) > 1
        if self.ok:
            self.struct = struct.Struct(''.join(self._fmt))
            self.headers = operator.itemgetter(*self._headers)
            self.expected = self.headers(self.struct.unpack_from(buf, p))
            self.fields = operator.itemgetter(*[self._where[field] for field in wanted])
            self.port = self._where[(0, DEST_PORT)]
            self.tun_port = self._where[(0, DEST_TUN_PORT)]

    def _take(self, code, values):
        self._fmt.append(code)
        self._count += values
        return self._count - values

    def _walk(self, buf, p, end, counters, nest):
        while p < end:
            alen, atype = _ATTR.unpack_from(buf, p)
            if alen < 4:
                raise _bad('an attribute shorter than its header')
            atype &= _TYPE_MASK
            size, pad = alen - 4, -alen % 4
            self._headers.append(self._take('I', 1))
            code = None
            if not nest and atype in (DEST_STATS, DEST_STATS64):
                if counters and atype == DEST_STATS64:
                    self._walk(buf, p + 4, p + alen, counters, atype)
                    size = 0
            elif not nest and atype == DEST_ADDR:
                code = '%ds' % size if size >= 4 else None
            elif not nest and atype in (DEST_PORT, DEST_TUN_PORT):
                code = 'BB' if size == 2 else None
            elif not nest and atype == DEST_WEIGHT:
                code = 'i' if size == 4 else None
            else:
                code = {1: 'B', 2: 'H', 4: 'I', 8: 'Q', 16: '16s'}.get(size)
            if code:
                self._where[(nest, atype)] = self._take(code, 2 if code == 'BB' else 1)
            elif size:
                self._take('%dx' % size, 0)
            if pad:
                self._take('%dx' % pad, 0)
            p += alen + pad

    def read(self, buf, p, end):
        """The fields of the nest buf[p:end] in make_dest's order, or None if it is laid out otherwise."""
        if end - p != self.size:
            return None
        values = self.struct.unpack_from(buf, p)
        if self.headers(values) != self.expected:
            return None
        fields = self.fields(values)
        i, j = self.port, self.tun_port
        return (fields[0], values[i] << 8 | values[i + 1]) + fields[2:8] + (values[j] << 8 | values[j + 1],) + fields[9:]


def make_dest(fields, cache, counters):
    """The fields of a real server -> (ipvs.RealServer, DestCounters or None)."""
    addr, port, fwd, weight, upper, lower, af, tun_type, tun_port, tun_flags = fields[:10]
    fwd &= IP_VS_CONN_F_FWD_MASK
    extra = ()
    if fwd == IP_VS_CONN_F_TUNNEL and tun_type:
        if tun_type == _TUN_GUE:
            extra = ('--tun-type', 'gue', '--tun-port', str(tun_port)) + _TUN_FLAGS.get(tun_flags, ())
        elif tun_type == _TUN_GRE:
            extra = ('--tun-type', 'gre') + _TUN_FLAGS.get(tun_flags, ())
    dest = RealServer(_address(af, addr, cache), port, _FORWARDING.get(fwd, 'dr'), weight, upper, lower, extra)
    if not counters:
        return dest, None
    return dest, DestCounters(Stats(*fields[13:18]), fields[10], fields[11], fields[12])


def parse_dest(buf, p, end, service_af, cache=None, counters=False):
    """One IPVS_CMD_ATTR_DEST nest, buf[p:end] -> (ipvs.RealServer, DestCounters or None)."""
    return make_dest(_dest_fields(buf, p, end, service_af, counters), {} if cache is None else cache, counters)


def parse_config(buf, p, end):
    """The attributes of the kernel's answer to IPVS_CMD_GET_CONFIG -> {'tcp': s, 'tcpfin': s, 'udp': s}."""
    names = {IPVS_CMD_ATTR_TIMEOUT_TCP: 'tcp', IPVS_CMD_ATTR_TIMEOUT_TCP_FIN: 'tcpfin', IPVS_CMD_ATTR_TIMEOUT_UDP: 'udp'}
    timeouts = {'tcp': 0, 'tcpfin': 0, 'udp': 0}
    while p < end:
        alen, atype = _ATTR.unpack_from(buf, p)
        if alen < 4:
            raise _bad('an attribute shorter than its header')
        name = names.get(atype & _TYPE_MASK)
        if name:
            timeouts[name] = _U32.unpack_from(buf, p + 4)[0]
        p += (alen + 3) & ~3
    return timeouts


def nested(buf, p, end, wanted):
    """(start, end) of the payload of the first attribute of type `wanted` in buf[p:end], or None."""
    while p + 4 <= end:
        alen, atype = _ATTR.unpack_from(buf, p)
        if alen < 4:
            raise _bad('an attribute shorter than its header')
        if atype & _TYPE_MASK == wanted:
            return p + 4, p + alen
        p += (alen + 3) & ~3
    return None


def attribute(atype, payload):
    """One netlink attribute, padded."""
    data = _ATTR.pack(4 + len(payload), atype) + payload
    return data + b'\0' * (-len(data) % 4)


# ---------------------------------------------------------------------------------------------
# the socket

class IpvsNetlink:
    """A generic netlink socket and the kernel's IPVS family: ``with IpvsNetlink() as ipvs: ipvs.dump()``.

    `sock` is for tests that replay captured replies; by default a NETLINK_GENERIC socket."""

    def __init__(self, sock=None):
        if sock is None:
            try:
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
            except (OSError, AttributeError) as exc:    # AttributeError: no AF_NETLINK (not Linux)
                raise IpvsUnavailable('cannot open a generic netlink socket to read IPVS: %s' % exc,
                                      errno=getattr(exc, 'errno', None))
        self._sock = sock
        self._seq = 0
        try:
            self.family = self._resolve()
        except BaseException:
            self.close()
            raise

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, family, flags, cmd, attrs=b''):
        self._seq += 1
        self._sock.sendto(_REQUEST.pack(_HEADERS + len(attrs), family, NLM_F_REQUEST | flags, self._seq, 0,
                                        cmd, IPVS_GENL_VERSION) + attrs, (0, 0))
        return self._seq

    def _replies(self, seq, what):
        """Yield (datagram, start, end): the attributes of each message answering request `seq`,
        up to its end (NLMSG_DONE for a dump); the kernel's error as a NetlinkError."""
        sock = self._sock
        while True:
            data = sock.recv(_BUFFER, socket.MSG_TRUNC)
            n = len(data)
            if n > _BUFFER:
                raise _bad('%s: a datagram of %d bytes, larger than the %d-byte buffer' % (what, n, _BUFFER))
            off = 0
            while off + 16 <= n:
                length, mtype, flags, mseq = _NLMSG.unpack_from(data, off)
                if length < 16 or off + length > n:
                    raise _bad('%s: a netlink message longer than its datagram' % what)
                if mseq == seq:
                    if mtype == NLMSG_DONE or mtype == NLMSG_ERROR:
                        code = _I32.unpack_from(data, off + 16)[0] if length >= 20 else 0
                        if code < 0:
                            raise _refused(what, -code)
                        return          # the end of a dump, or an acknowledgement
                    if mtype >= _NLMSG_MIN_TYPE and length > _HEADERS:
                        yield data, off + _HEADERS, off + length
                    if not flags & NLM_F_MULTI:
                        return
                off += (length + 3) & ~3

    def _resolve(self):
        seq = self._send(GENL_ID_CTRL, 0, CTRL_CMD_GETFAMILY, attribute(CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME + b'\0'))
        try:
            for data, start, end in self._replies(seq, 'looking up the IPVS generic netlink family'):
                pos = nested(data, start, end, CTRL_ATTR_FAMILY_ID)
                if pos:
                    return _U16.unpack_from(data, pos[0])[0]
        except NetlinkError as exc:
            if exc.errno == _errno.ENOENT:
                raise IpvsUnavailable('IPVS is not available in this kernel (no "IPVS" generic netlink family, '
                                      'and the kernel could not load ip_vs itself): load the ip_vs module '
                                      '(modprobe ip_vs) or use a kernel built with IP_VS', errno=exc.errno)
            raise
        raise _bad('no id for the IPVS generic netlink family')

    def timeouts(self):
        """{'tcp': s, 'tcpfin': s, 'udp': s}."""
        seq = self._send(self.family, 0, IPVS_CMD_GET_CONFIG)
        result = None
        for data, start, end in self._replies(seq, 'reading the IPVS timeouts'):
            result = parse_config(data, start, end)
        if result is None:
            raise _bad('no answer to IPVS_CMD_GET_CONFIG')
        return result

    def dump(self, counters=False, timeouts=True):
        """Everything asked for in one pass -> Dump(table, timeouts or None, counters or None)."""
        family, cache = self.family, {}
        config_seq = self._send(family, 0, IPVS_CMD_GET_CONFIG) if timeouts else None
        services_seq = self._send(family, NLM_F_DUMP, IPVS_CMD_GET_SERVICE)
        times = None
        if timeouts:
            for data, start, end in self._replies(config_seq, 'reading the IPVS timeouts'):
                times = parse_config(data, start, end)
        services = []       # all of them first: a socket runs one dump at a time
        for data, start, end in self._replies(services_seq, 'reading the IPVS services'):
            pos = nested(data, start, end, IPVS_CMD_ATTR_SERVICE)
            if pos:
                services.append(parse_service(data, pos[0], pos[1], cache, counters))
        table = {}
        numbers = {} if counters else None
        layout = None
        for service, ident, af, stats in services:
            dests, dest_numbers = {}, {}
            seq = self._send(family, NLM_F_DUMP, IPVS_CMD_GET_DEST, attribute(IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, ident))
            for data, start, end in self._replies(seq, 'reading the real servers of %s' % describe_key(service.key)):
                alen, atype = _ATTR.unpack_from(data, start)
                if atype & _TYPE_MASK != IPVS_CMD_ATTR_DEST or alen < 4:
                    pos = nested(data, start, end, IPVS_CMD_ATTR_DEST)
                    if pos is None:
                        continue
                    p, q = pos
                else:
                    p, q = start + 4, start + alen
                if layout is None:
                    layout = _DestLayout(data, p, q, counters)
                fields = layout.read(data, p, q) if layout.ok else None
                if fields is None:
                    fields = _dest_fields(data, p, q, af, counters)
                dest, dest_counters = make_dest(fields, cache, counters)
                dkey = (dest.address, dest.port)
                dests[dkey] = dest
                if counters:
                    dest_numbers[dkey] = dest_counters
            table[service.key] = (service, dests)
            if counters:
                numbers[service.key] = (stats, dest_numbers)
        return Dump(table, times, numbers)


def dump(counters=False, timeouts=True):
    """The kernel's IPVS table, its timeouts, and its counters when asked, in one in-process read.

    -> Dump(table, timeouts, counters); raises IpvsUnavailable or NetlinkError."""
    with IpvsNetlink() as ipvs:
        return ipvs.dump(counters=counters, timeouts=timeouts)


def read_table():
    """{service key: (ipvs.Service, {(address, port): ipvs.RealServer})}, as ipvsadm -Sn plus thresholds."""
    return dump(timeouts=False).table


def read_timeouts():
    """{'tcp': s, 'tcpfin': s, 'udp': s}, as ``ipvsadm -L --timeout``."""
    with IpvsNetlink() as ipvs:
        return ipvs.timeouts()
