# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The IPVS table as ipvsadm sees it: parse it, compare it with what is wanted, render the difference.

Nothing here runs a command: ``parse_save`` and ``parse_thresholds`` read ipvsadm's text,
``desired_service`` turns module options into the same shape (or raises ``ValidationError``
naming the field), ``plan`` computes the difference as ipvsadm command lines for one
``ipvsadm -R`` batch.
"""

from __future__ import annotations

import ipaddress
from collections import namedtuple

from ansible_collections.lvs.cluster.plugins.module_utils import model
from ansible_collections.lvs.cluster.plugins.module_utils.model import SCHEDULER_FLAGS, SCHEDULERS

# ipvsadm prints the generic flag names as the scheduler's own ones.
_GENERIC_FLAGS = {'sh': {'flag-1': 'sh-fallback', 'flag-2': 'sh-port'},
                  'mh': {'flag-1': 'mh-fallback', 'flag-2': 'mh-port'}}
PROTOCOLS = {'tcp': '-t', 'udp': '-u', 'sctp': '--sctp-service'}
_PROTOCOL_BY_SWITCH = {'-t': 'tcp', '--tcp-service': 'tcp', '-u': 'udp', '--udp-service': 'udp',
                       '--sctp-service': 'sctp'}
FORWARDING = {'nat': '-m', 'dr': '-g', 'tunnel': '-i'}
_FORWARDING_BY_SWITCH = {'-m': 'nat', '--masquerading': 'nat', '-g': 'dr', '--gatewaying': 'dr',
                         '-i': 'tunnel', '--ipip': 'tunnel'}
MAX_WEIGHT = 65535
MAX_THRESHOLD = 2147483647
MAX_FWMARK = 4294967295

# A virtual service is known by its key: ('addr', family, protocol, address, port) or ('fwmark', family, mark).
Service = namedtuple('Service', 'key scheduler scheduler_flags persistent persistent_netmask '
                                'persistence_engine one_packet')
# A real server is known by (address, port) within its service.
RealServer = namedtuple('RealServer', 'address port forwarding weight upper_threshold lower_threshold extra')


class IpvsError(Exception):
    """Text from ipvsadm that this module cannot read."""


class ValidationError(ValueError):
    """Bad input, named by its field."""

    def __init__(self, field, message):
        super().__init__('%s: %s' % (field, message))
        self.field = field


# ---------------------------------------------------------------------------------------------
# addresses

def _family(address):
    return 'ipv6' if address.version == 6 else 'ipv4'


def split_endpoint(text):
    """'198.18.0.1:80' or '[2001:db8::1]:80' -> (address, port) with the address compressed."""
    if text.startswith('['):
        host, sep, port = text[1:].partition(']:')
    else:
        host, sep, port = text.rpartition(':')
    if not sep or not port.isdigit():
        raise IpvsError('cannot read address and port from %r' % text)
    if ':' in host:
        return ipaddress.IPv6Address(host).compressed, int(port)
    if host.count('.') != 3 or not host.replace('.', '').isdigit():
        raise IpvsError('cannot read an address from %r' % text)
    return host, int(port)


def join_endpoint(address, port):
    if ':' in address:
        return '[%s]:%d' % (address, port)
    return '%s:%d' % (address, port)


def default_netmask(family):
    return '128' if family == 'ipv6' else '255.255.255.255'


def service_family(key):
    return key[1]


def service_switches(key):
    """The ipvsadm switches naming a virtual service, for -A/-E/-D and for -a/-e/-d."""
    if key[0] == 'fwmark':
        switches = ['-f', str(key[2])]
        if key[1] == 'ipv6':
            switches.append('-6')
        return switches
    return [PROTOCOLS[key[2]], join_endpoint(key[3], key[4])]


def describe_key(key):
    if key[0] == 'fwmark':
        return 'fwmark %d%s' % (key[2], ' (IPv6)' if key[1] == 'ipv6' else '')
    return '%s %s' % (key[2], join_endpoint(key[3], key[4]))


# ---------------------------------------------------------------------------------------------
# parsing ipvsadm's output

# ipvsadm -S option -> (field, converter); a converter of None marks a switch without a value.
_RULE_OPTIONS = {
    '-f': ('fwmark', int), '--fwmark-service': ('fwmark', int),
    '-6': ('ipv6', None), '--ipv6': ('ipv6', None),
    '-s': ('scheduler', str), '--scheduler': ('scheduler', str),
    '-b': ('flags', str), '--sched-flags': ('flags', str),
    '-p': ('persistent', int), '--persistent': ('persistent', int),
    '-M': ('netmask', str), '--netmask': ('netmask', str),
    '--pe': ('pe', str),
    '-o': ('ops', None), '--ops': ('ops', None),
    '-r': ('dest', str), '--real-server': ('dest', str),
    '-w': ('weight', int), '--weight': ('weight', int),
    '--tun-type': ('extra', str), '--tun-port': ('extra', str),
    '--tun-nocsum': ('extra', None), '--tun-csum': ('extra', None), '--tun-remcsum': ('extra', None),
}


def parse_rule(line):
    """One line of `ipvsadm -S -n`: ('service', Service) or ('dest', service key, RealServer).

    ipvsadm prints no quoting, so a plain split reads it (and is several times faster than shlex
    on tables of thousands of real servers).
    """
    tokens = line.split()
    if not tokens or tokens[0] not in ('-A', '-a'):
        raise IpvsError('unexpected line from ipvsadm -Sn: %r' % line)
    values = {'scheduler': 'wlc', 'flags': '', 'persistent': 0, 'netmask': None, 'pe': None}
    switches = set()
    key_parts = fwmark = dest = None
    forwarding = 'dr'
    extra = []
    i, count = 1, len(tokens)
    try:
        while i < count:
            tok = tokens[i]
            if tok in _PROTOCOL_BY_SWITCH:
                key_parts = (_PROTOCOL_BY_SWITCH[tok],) + split_endpoint(tokens[i + 1])
                i += 2
                continue
            if tok in _FORWARDING_BY_SWITCH:
                forwarding = _FORWARDING_BY_SWITCH[tok]
                i += 1
                continue
            field, convert = _RULE_OPTIONS[tok]
            if convert is None:
                if field == 'extra':
                    extra.append(tok)
                else:
                    switches.add(field)
                i += 1
                continue
            value = convert(tokens[i + 1])
            if field == 'extra':
                extra.extend((tok, value))
            elif field == 'fwmark':
                fwmark = value
            elif field == 'dest':
                dest = split_endpoint(value)
            else:
                values[field] = value
            i += 2
    except KeyError:
        raise IpvsError('unknown option %r in line %r' % (tokens[i], line))
    except IndexError:
        raise IpvsError('option %s has no value in line %r' % (tokens[i], line))
    family = 'ipv6' if 'ipv6' in switches else 'ipv4'
    if fwmark is not None:
        key = ('fwmark', family, fwmark)
    elif key_parts is not None:
        key = ('addr', 'ipv6' if ':' in key_parts[1] else 'ipv4') + key_parts
    else:
        raise IpvsError('no virtual service in line %r' % line)
    if tokens[0] == '-A':
        scheduler = values['scheduler']
        generic = _GENERIC_FLAGS.get(scheduler, {})
        flags = tuple(sorted(generic.get(f, f) for f in values['flags'].split(',') if f))
        netmask = values['netmask'] if values['persistent'] else None
        if netmask == default_netmask(key[1]):
            netmask = None
        return 'service', Service(key, scheduler, flags, values['persistent'], netmask,
                                  values['pe'], 'ops' in switches)
    if dest is None:
        raise IpvsError('no real server in line %r' % line)
    # The tunnel type ipip is the kernel's default; anything else is kept as it is.
    if extra == ['--tun-type', 'ipip']:
        extra = []
    return 'dest', key, RealServer(dest[0], dest[1], forwarding, values.get('weight', 1), 0, 0, tuple(extra))


def parse_save(text):
    """`ipvsadm -S -n` -> {service key: (Service, {(address, port): RealServer})}."""
    table = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        kind, *rest = parse_rule(line)
        if kind == 'service':
            table[rest[0].key] = (rest[0], {})
        else:
            key, dest = rest
            if key not in table:
                raise IpvsError('real server before its service in line %r' % line)
            table[key][1][(dest.address, dest.port)] = dest
    return table


def _listing_key(fields):
    """The service key from a service line of `ipvsadm -L -n`: 'TCP  198.18.0.1:80 wlc ...'."""
    proto = fields[0]
    if proto == 'FWM':
        family = 'ipv6' if len(fields) > 2 and fields[2] == 'IPv6' else 'ipv4'
        return ('fwmark', family, int(fields[1]))
    address, port = split_endpoint(fields[1])
    return ('addr', _family(ipaddress.ip_address(address)), proto.lower(), address, port)


def parse_listing(text):
    """`ipvsadm -L -n [--thresholds|--stats --exact]` -> {service key: (numbers, {(address, port): numbers})}.

    The numbers are the columns after the address (after scheduler and flags on service lines, only
    for --stats, where services carry numbers too).
    """
    listing = {}
    current = None
    for raw in text.splitlines():
        fields = raw.split()
        if not fields or fields[0] in ('IP', 'Prot') or raw.startswith('  -> RemoteAddress'):
            continue
        if fields[0] == '->':
            if current is None:
                raise IpvsError('real server before its service in line %r' % raw)
            address, port = split_endpoint(fields[1])
            listing[current][1][(address, port)] = [int(f) for f in fields[2:] if f.isdigit()]
        elif fields[0] in ('TCP', 'UDP', 'SCTP', 'FWM'):
            current = _listing_key(fields)
            numbers = [int(f) for f in fields[2:] if f.isdigit()] if _is_numeric_tail(fields) else []
            listing[current] = (numbers, {})
        else:
            raise IpvsError('unexpected line from ipvsadm -Ln: %r' % raw)
    return listing


def _is_numeric_tail(fields):
    tail = fields[3:] if fields[0] == 'FWM' and len(fields) > 2 and fields[2] == 'IPv6' else fields[2:]
    return bool(tail) and all(f.isdigit() for f in tail)


def apply_thresholds(table, listing):
    """Fill in the thresholds that `ipvsadm -Sn` leaves out, from `ipvsadm -Ln --thresholds`."""
    for key, (service, dests) in table.items():
        numbers = listing.get(key, ([], {}))[1]
        for dkey, dest in list(dests.items()):
            cols = numbers.get(dkey)
            if cols and len(cols) >= 2 and (cols[0] or cols[1]):
                dests[dkey] = dest._replace(upper_threshold=cols[0], lower_threshold=cols[1])
    return table


# ---------------------------------------------------------------------------------------------
# desired state from module options

def _address(value, field):
    """The address as the kernel prints it, or ValidationError naming the field."""
    try:
        return model.normalize_address(value)
    except ValueError:
        raise ValidationError(field, '%r is not an IPv4 or IPv6 address' % (value,))


def _int_in(value, low, high, field, what):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, 'must be a whole number, got %r' % (value,))
    if not low <= value <= high:
        raise ValidationError(field, '%s %d is out of range %d-%d' % (what, value, low, high))
    return value


def _netmask(value, family, field):
    if value is None or value == '':
        return None
    text = str(value).strip()
    if family == 'ipv6':
        if not text.isdigit() or not 1 <= int(text) <= 128:
            raise ValidationError(field, 'for IPv6 give a prefix length 1-128, got %r' % (value,))
        return None if text == '128' else str(int(text))
    try:
        net = ipaddress.IPv4Network('0.0.0.0/%s' % text)
    except ValueError:
        raise ValidationError(field, '%r is not an IPv4 netmask such as 255.255.255.0' % (value,))
    mask = str(net.netmask)
    return None if mask == '255.255.255.255' else mask


def desired_service(params):
    """Module options -> (Service, [(state, RealServer, field)]), or ValidationError naming the field."""
    if params.get('fwmark') is not None:
        if params.get('address') is not None or params.get('port') is not None:
            raise ValidationError('fwmark', 'a firewall-mark service has no address or port')
        mark = _int_in(params['fwmark'], 1, MAX_FWMARK, 'fwmark', 'fwmark')
        family = params.get('family') or 'ipv4'
        key = model.service_key(dict(fwmark=mark, family=family))
    else:
        if params.get('address') is None:
            raise ValidationError('address', 'give address and port, or fwmark')
        vip = _address(params['address'], 'address')
        if params.get('port') is None:
            raise ValidationError('port', 'a service with an address needs a port')
        port = _int_in(params['port'], 1, 65535, 'port', 'port')
        family = model.address_family(vip)
        if params.get('family') and params['family'] != family:
            raise ValidationError('family', '%s does not match the address %s' % (params['family'], vip))
        key = model.service_key(dict(address=vip, port=port, protocol=params.get('protocol')))

    scheduler = params.get('scheduler') or 'wlc'
    if scheduler not in SCHEDULERS:
        raise ValidationError('scheduler', 'unknown scheduler %r; choose one of %s' % (scheduler, ', '.join(SCHEDULERS)))
    flags = tuple(sorted(set(params.get('scheduler_flags') or ())))
    allowed = SCHEDULER_FLAGS.get(scheduler, ())
    for flag in flags:
        if flag not in allowed:
            raise ValidationError('scheduler_flags', '%r does not apply to scheduler %s%s' % (
                flag, scheduler, ' (it takes %s)' % ', '.join(allowed) if allowed else ' (it takes no flags)'))

    persistent = _int_in(params.get('persistent') or 0, 0, MAX_THRESHOLD, 'persistent', 'timeout')
    netmask = _netmask(params.get('persistent_netmask'), family, 'persistent_netmask')
    if netmask and not persistent:
        raise ValidationError('persistent_netmask', 'applies only to a persistent service: set persistent')
    engine = params.get('persistence_engine')
    if engine and not persistent:
        raise ValidationError('persistence_engine', 'applies only to a persistent service: set persistent')
    one_packet = bool(params.get('one_packet'))
    if one_packet and not (key[0] == 'addr' and key[2] == 'udp'):
        raise ValidationError('one_packet', 'one-packet scheduling is only for UDP services')
    service = Service(key, scheduler, flags, persistent, netmask, engine, one_packet)

    dests = []
    seen = {}
    for index, spec in enumerate(params.get('real_servers') or []):
        field = 'real_servers[%d]' % index
        dest = _desired_dest(spec, key, params, field)
        dkey = (dest.address, dest.port)
        if dkey in seen:
            raise ValidationError(field, 'duplicate of %s (%s)' % (seen[dkey], join_endpoint(*dkey)))
        seen[dkey] = field
        dests.append((spec.get('state') or 'present', dest, field))
    return service, dests


def _desired_dest(spec, key, params, field):
    if not isinstance(spec, dict):
        raise ValidationError(field, 'must be a dictionary with at least an address')
    if spec.get('address') is None:
        raise ValidationError(field + '.address', 'is required')
    address = _address(spec['address'], field + '.address')
    forwarding = model.effective_forwarding(spec, params)
    if forwarding not in FORWARDING:
        raise ValidationError(field + '.forwarding', 'choose one of nat, dr, tunnel, got %r' % (forwarding,))
    family = 'ipv6' if ':' in address else 'ipv4'
    if family != service_family(key) and forwarding != 'tunnel':
        raise ValidationError(field + '.address', '%s is %s but the service is %s: the kernel mixes address '
                              'families only with tunnel forwarding' % (address, family, service_family(key)))
    service_port = key[4] if key[0] == 'addr' else 0
    port = spec.get('port')
    if port is None:
        port = service_port
    else:
        port = _int_in(port, 0 if key[0] == 'fwmark' else 1, 65535, field + '.port', 'port')
    if forwarding != 'nat' and port != service_port:
        raise ValidationError(field + '.port', 'port %d differs from the service port %d: only nat forwarding '
                              'can map ports (%s always uses the service port)' % (port, service_port, forwarding))
    weight = spec.get('weight')
    weight = 1 if weight is None else _int_in(weight, 0, MAX_WEIGHT, field + '.weight', 'weight')
    upper = _int_in(spec.get('upper_threshold') or 0, 0, MAX_THRESHOLD, field + '.upper_threshold', 'threshold')
    lower = _int_in(spec.get('lower_threshold') or 0, 0, MAX_THRESHOLD, field + '.lower_threshold', 'threshold')
    if lower > upper:
        raise ValidationError(field + '.lower_threshold', 'lower threshold %d is above the upper threshold %d '
                              '(the kernel refuses it; set upper_threshold too)' % (lower, upper))
    state = spec.get('state') or 'present'
    if state not in ('present', 'absent'):
        raise ValidationError(field + '.state', 'choose present or absent, got %r' % (state,))
    return RealServer(address, port, forwarding, weight, upper, lower, ())


# ---------------------------------------------------------------------------------------------
# rendering and planning

def render_service(service, verb='-A'):
    words = [verb] + service_switches(service.key) + ['-s', service.scheduler]
    if service.persistent:
        words += ['-p', str(service.persistent)]
        if service.persistent_netmask:
            words += ['-M', service.persistent_netmask]
        if service.persistence_engine:
            words += ['--pe', service.persistence_engine]
    if service.scheduler_flags:
        words += ['-b', ','.join(service.scheduler_flags)]
    if service.one_packet:
        words.append('-o')
    return ' '.join(words)


def render_dest(key, dest, verb='-a'):
    words = [verb] + service_switches(key) + ['-r', join_endpoint(dest.address, dest.port)]
    if verb == '-d':
        return ' '.join(words)
    words += [FORWARDING[dest.forwarding], '-w', str(dest.weight)]
    if dest.upper_threshold:
        words += ['-x', str(dest.upper_threshold)]
    if dest.lower_threshold:
        words += ['-y', str(dest.lower_threshold)]
    words += list(dest.extra)
    return ' '.join(words)


def render_entry(service, dests):
    """A service and its real servers as `ipvsadm -Sn` would list them (sorted), for diffs."""
    if service is None:
        return ''
    lines = [render_service(service)]
    lines += [render_dest(service.key, dests[dkey]) for dkey in sorted(dests)]
    return '\n'.join(lines) + '\n'


def _same_dest(current, wanted):
    return current[:6] == wanted[:6]  # every field but the tunnel options that are not managed


def plan(table, service, dests, state='present', purge=False, drain=False):
    """The ipvsadm lines that take this service from `table` to what is wanted, and the entry after.

    Returns (commands, (Service or None, {dest key: RealServer}) after).
    """
    key = service.key
    current, current_dests = table.get(key, (None, {}))
    if state == 'absent':
        return (['-D ' + ' '.join(service_switches(key))] if current else []), (None, {})

    commands = []
    after = dict(current_dests)
    if current is None:
        commands.append(render_service(service, '-A'))
    elif current != service:
        commands.append(render_service(service, '-E'))

    removals = []
    wanted = {}
    for dstate, dest, _field in dests:
        dkey = (dest.address, dest.port)
        if dstate == 'absent':
            if dkey in current_dests:
                removals.append(dkey)
        else:
            wanted[dkey] = dest
    if purge:
        removals += [dkey for dkey in current_dests if dkey not in wanted and dkey not in removals]

    for dkey in sorted(removals):
        if drain:
            drained = current_dests[dkey]._replace(weight=0)
            if drained != current_dests[dkey]:
                commands.append(render_dest(key, drained, '-e'))
                after[dkey] = drained
        else:
            commands.append(render_dest(key, current_dests[dkey], '-d'))
            del after[dkey]
    for dkey, dest in wanted.items():
        if dkey not in current_dests:
            commands.append(render_dest(key, dest, '-a'))
            after[dkey] = dest
        elif not _same_dest(current_dests[dkey], dest):
            commands.append(render_dest(key, dest, '-e'))
            after[dkey] = dest
    return commands, (service, after)


# ---------------------------------------------------------------------------------------------
# data for users (ipvs_info, and what ipvs_service returns)

def service_to_dict(service, dests):
    key = service.key
    data = {'scheduler': service.scheduler, 'scheduler_flags': list(service.scheduler_flags),
            'persistent': service.persistent,
            'persistent_netmask': service.persistent_netmask if service.persistent_netmask
            else (default_netmask(key[1]) if service.persistent else None),
            'persistence_engine': service.persistence_engine, 'one_packet': service.one_packet,
            'family': key[1]}
    if key[0] == 'fwmark':
        data.update(fwmark=key[2], protocol=None, address=None, port=None)
    else:
        data.update(fwmark=None, protocol=key[2], address=key[3], port=key[4])
    data['real_servers'] = [dest_to_dict(dests[dkey]) for dkey in sorted(dests)]
    return data


def dest_to_dict(dest):
    return {'address': dest.address, 'port': dest.port, 'forwarding': dest.forwarding, 'weight': dest.weight,
            'upper_threshold': dest.upper_threshold, 'lower_threshold': dest.lower_threshold}
