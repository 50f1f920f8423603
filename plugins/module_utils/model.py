# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster model, one definition for the module and both roles' filters.

- ``ipvs_service_spec``: lvs.cluster.ipvs_service's argument spec and its rules. The module builds
  its AnsibleModule from it; the roles' filter checks the inventory with it (ArgumentSpecValidator)
  on the controller.
- ``normalize_address``: an address as the kernel prints it (``2001:DB8::2`` -> ``2001:db8::2``), so
  two spellings of one address are the same address everywhere.
- ``effective_forwarding``: a real server's forwarding method - its own, else its service's, else the
  default (the module's option, the roles' ``lvs_forwarding``).
- ``service_key``: what names a virtual service in the kernel's table.
- ``director_config`` and ``realserver_config``: what a director, and what each real server, must
  configure for a list of virtual services.

Only the standard library: this runs on the managed hosts (Python 3.9 and later) as well.
"""

from __future__ import annotations

import copy
import ipaddress

SCHEDULERS = ('rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh')
SCHEDULER_FLAGS = {
    'sh': ('sh-fallback', 'sh-port'),
    'mh': ('mh-fallback', 'mh-port'),
}
PROTOCOL_NAMES = ('tcp', 'udp', 'sctp')
FORWARDING_METHODS = ('nat', 'dr', 'tunnel')
PERSISTENCE_ENGINES = ('sip',)
DEFAULT_FORWARDING = 'dr'     # ipvsadm's own default (-g)
DEFAULT_SCHEDULER = 'wlc'

_REAL_SERVER_SPEC = dict(
    address=dict(type='str', required=True),
    port=dict(type='int'),
    weight=dict(type='int', default=1),
    forwarding=dict(type='str', choices=sorted(FORWARDING_METHODS)),
    upper_threshold=dict(type='int', default=0),
    lower_threshold=dict(type='int', default=0),
    state=dict(type='str', default='present', choices=['present', 'absent']),
)
_SERVICE_SPEC = dict(
    state=dict(type='str', default='present', choices=['present', 'absent']),
    protocol=dict(type='str', default='tcp', choices=sorted(PROTOCOL_NAMES)),
    address=dict(type='str'),
    port=dict(type='int'),
    fwmark=dict(type='int'),
    family=dict(type='str', choices=['ipv4', 'ipv6']),
    scheduler=dict(type='str', default=DEFAULT_SCHEDULER, choices=list(SCHEDULERS)),
    scheduler_flags=dict(type='list', elements='str', default=[],
                         choices=[flag for flags in SCHEDULER_FLAGS.values() for flag in flags]),
    persistent=dict(type='int', default=0),
    persistent_netmask=dict(type='str'),
    persistence_engine=dict(type='str', choices=list(PERSISTENCE_ENGINES)),
    one_packet=dict(type='bool', default=False),
    forwarding=dict(type='str', default=DEFAULT_FORWARDING, choices=sorted(FORWARDING_METHODS)),
    real_servers=dict(type='list', elements='dict', default=[], options=_REAL_SERVER_SPEC),
    purge_real_servers=dict(type='bool', default=False),
    drain=dict(type='bool', default=False),
)
_SERVICE_RULES = dict(
    mutually_exclusive=[['fwmark', 'address'], ['fwmark', 'port']],
    required_one_of=[['fwmark', 'address']],
    required_together=[['address', 'port']],
)


def ipvs_service_spec():
    """lvs.cluster.ipvs_service's options and the rules between them, as keyword arguments of both
    AnsibleModule and ArgumentSpecValidator (a fresh copy each time: callers may change it)."""
    return copy.deepcopy(dict(argument_spec=_SERVICE_SPEC, **_SERVICE_RULES))


# ---------------------------------------------------------------------------------------------
# addresses, forwarding, keys

def _dotted_quad(text):
    """text itself if it is an IPv4 address already written as the kernel prints it (four
    decimal numbers 0-255, no leading zeros), else None: most addresses are, and a list of
    thousands is read faster this way than through ipaddress."""
    parts = text.split('.')
    if len(parts) != 4:
        return None
    for part in parts:
        if not part.isdigit() or not part.isascii() or (len(part) > 1 and part[0] == '0') or int(part) > 255:
            return None
    return text


def normalize_address(value):
    """An IPv4 or IPv6 address as the kernel prints it (IPv6 compressed, lower case).
    Raises ValueError for anything else."""
    text = str(value).strip()
    return _dotted_quad(text) or str(ipaddress.ip_address(text))


def address_family(address):
    """'ipv4' or 'ipv6' of an address (text or ipaddress object)."""
    return 'ipv6' if ':' in normalize_address(address) else 'ipv4'


def is_present(entry):
    """A virtual service or real server to be there (state omitted or present)."""
    return (entry.get('state') or 'present') == 'present'


def effective_forwarding(real_server, service, default=DEFAULT_FORWARDING):
    """A real server's forwarding method: its own, else its service's, else the default."""
    return real_server.get('forwarding') or service.get('forwarding') or default


def service_key(service):
    """What names a virtual service in the kernel's table: ('addr', family, protocol, address, port)
    or ('fwmark', family, mark). Raises ValueError if the service names none."""
    if service.get('fwmark') is not None:
        return ('fwmark', service.get('family') or 'ipv4', int(service['fwmark']))
    address = normalize_address(service['address'])
    return ('addr', address_family(address), service.get('protocol') or 'tcp', address, int(service['port']))


def key_options(key):
    """A service key as the ipvs_service options that name it."""
    if key[0] == 'fwmark':
        return {'fwmark': key[2], 'family': key[1]}
    return {'protocol': key[2], 'address': key[3], 'port': key[4]}


def address_or_none(value):
    """normalize_address(value), or None for anything that is not an address."""
    try:
        return normalize_address(value)
    except ValueError:
        return None


def _service_name(service):
    if service.get('name'):
        return service['name']
    if service.get('address') is not None:
        return '%s:%s' % (service['address'], service.get('port'))
    return 'fwmark %s' % service.get('fwmark')


def _unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _interface_facts(facts, name):
    return facts.get(name) or facts.get(name.replace('-', '_')) or {}


def _sysctl_key(interface, setting, family='ipv4'):
    # An interface name's dots become slashes in a sysctl key (eth0.100 -> net.ipv4.conf.eth0/100.x).
    return 'net.%s.conf.%s.%s' % (family, interface.replace('.', '/'), setting)


# ---------------------------------------------------------------------------------------------
# what a director configures

def director_config(services, forwarding, facts=None, sysctl_interfaces=(), internal_network='',
                    masquerade=True, vip_interface='', ipvs_sysctls=None, internal_address=''):
    """What the director role sets up for these virtual services (each in ipvs_service's shape):

    forwardings      the forwarding methods its present real servers use
    nat              whether any uses NAT
    vips             the VIPs of the present address services, normalised
    kernel_modules   ip_vs and the modules of the schedulers in use
    masquerade_networks  the networks to MASQUERADE (NAT, director_masquerade)
    redirect_interfaces  interfaces for send_redirects=0: the given ones, or those with IPv4 but lo
    sysctls          [{name, value}]: ip_forward (NAT; IPv6 forwarding with an IPv6 VIP), send_redirects=0,
                     then the IPVS settings given (net.ipv4.vs.<name>, in name order)
    errors           what is wrong with the director's own settings (the services are checked by
                     ipvs_service_errors), naming the variable
    """
    facts = facts or {}
    present = [s for s in services if isinstance(s, dict) and is_present(s)]
    forwardings = _unique(effective_forwarding(rs, s, forwarding)
                          for s in present for rs in s.get('real_servers') or []
                          if isinstance(rs, dict) and is_present(rs))
    nat = 'nat' in forwardings
    vips = _unique(address_or_none(s['address']) or str(s['address']) for s in present if s.get('address') is not None)
    modules = _unique(['ip_vs'] + ['ip_vs_' + (s.get('scheduler') or DEFAULT_SCHEDULER) for s in present])
    networks = [internal_network] if masquerade and nat and internal_network else []
    if sysctl_interfaces:
        interfaces = list(sysctl_interfaces)
    else:
        interfaces = [name for name in sorted(facts.get('interfaces') or [])
                      if name != 'lo' and 'ipv4' in _interface_facts(facts, name)]
    sysctls = []
    if nat:
        sysctls.append({'name': 'net.ipv4.ip_forward', 'value': '1'})
        if any(':' in vip for vip in vips):
            sysctls.append({'name': 'net.ipv6.conf.all.forwarding', 'value': '1'})
    sysctls += [{'name': _sysctl_key(name, 'send_redirects'), 'value': '0'} for name in ['all', 'default'] + interfaces]
    sysctls += [{'name': 'net.ipv4.vs.%s' % name, 'value': str(int(value))}
                for name, value in sorted((ipvs_sysctls or {}).items()) if value is not None]

    errors = []
    network = None
    if networks:
        try:
            network = ipaddress.ip_network(internal_network, strict=False)
            if '/' not in internal_network:
                raise ValueError(internal_network)
        except ValueError:
            network = None
            errors.append('director_internal_network (lvs_internal_network): %s is not a network such as 198.18.1.0/24'
                          % internal_network)
    gateway = address_or_none(internal_address) if internal_address else None
    if nat and internal_address and gateway is None:
        errors.append('director_internal_address (lvs_director_internal_address): %s is not an IPv4 or IPv6 address'
                      % internal_address)
    elif nat and network is not None and gateway is not None and ipaddress.ip_address(gateway) not in network:
        errors.append('director_internal_address (lvs_director_internal_address): %s is not in director_internal_network'
                      ' (lvs_internal_network) %s: the NAT real servers could not route through it' % (gateway, internal_network))
    if nat and masquerade and not internal_network:
        errors.append('director_internal_network (lvs_internal_network): a real server uses NAT:'
                      ' give its network (or set director_masquerade: false)')
    if vip_interface and vip_interface not in (facts.get('interfaces') or []):
        errors.append('director_vip_interface: this host has no interface %s' % vip_interface)
    return dict(forwardings=forwardings, nat=nat, vips=vips, kernel_modules=modules, masquerade_networks=networks,
                redirect_interfaces=interfaces, sysctls=sysctls, errors=errors)


# ---------------------------------------------------------------------------------------------
# what a real server configures

def realserver_entries(services, addresses, forwarding, extra_vips=()):
    """One {vip, address, forwarding, service} per present real server, in a present address
    service, whose address is one of this host's (compared as addresses, not as text); then one per
    extra VIP (address '')."""
    mine = set(filter(None, (address_or_none(a) for a in addresses)))
    entries = []
    for service in services:
        if not isinstance(service, dict) or not is_present(service) or service.get('address') is None:
            continue
        vip = address_or_none(service['address'])
        if vip is None:
            continue   # reported by realserver_config's errors
        for rs in service.get('real_servers') or []:
            if not isinstance(rs, dict) or not is_present(rs):
                continue
            address = address_or_none(rs.get('address'))
            if address in mine:
                entries.append({'vip': vip, 'address': address, 'forwarding': effective_forwarding(rs, service, forwarding),
                                'service': _service_name(service)})
    for extra in extra_vips:
        entries.append({'vip': address_or_none(extra['address']) or str(extra['address']), 'address': '',
                        'forwarding': extra['forwarding'], 'service': 'realserver_extra_vips'})
    return entries


def realserver_config(services, addresses, forwarding, extra_vips=(), facts=None, rp_filter=2,
                      director_internal_address=''):
    """What the realserver role sets up on a host with these addresses:

    entries        realserver_entries()
    nat            whether it is a NAT real server (default route via the director)
    dr_vips        VIPs for lo (direct routing)
    tunnel_vips    VIPs for tunl0 (IP tunnel)
    kernel_modules ipip with tunnel forwarding
    interfaces     the interfaces holding its real server addresses (where ARP for a VIP arrives)
    sysctls        [{name, value}]: arp_ignore=1, arp_announce=2 (IPv4 VIPs on lo or tunl0), tunl0's rp_filter
    errors         what is wrong with the input, naming the variable
    """
    facts = facts or {}
    extra_vips = list(extra_vips or ())
    entries = realserver_entries(services, addresses, forwarding, extra_vips)
    nat = any(e['forwarding'] == 'nat' for e in entries)
    dr_vips = _unique(e['vip'] for e in entries if e['forwarding'] == 'dr')
    tunnel_vips = _unique(e['vip'] for e in entries if e['forwarding'] == 'tunnel')
    arp = any(':' not in vip for vip in dr_vips + tunnel_vips)

    wanted = set(e['address'] for e in entries if e['address'])
    interfaces = []
    for name in sorted(facts.get('interfaces') or []):
        if name == 'lo':
            continue
        info = _interface_facts(facts, name)
        held = ([info['ipv4']] if 'ipv4' in info else []) + list(info.get('ipv4_secondaries') or []) + list(info.get('ipv6') or [])
        if any(address_or_none(h.get('address')) in wanted for h in held):
            interfaces.append(name)

    sysctls = []
    if arp:
        for name in ['all'] + interfaces:
            sysctls += [{'name': _sysctl_key(name, 'arp_ignore'), 'value': '1'},
                        {'name': _sysctl_key(name, 'arp_announce'), 'value': '2'}]
    if tunnel_vips:
        sysctls.append({'name': _sysctl_key('tunl0', 'rp_filter'), 'value': str(rp_filter)})

    errors = ['realserver_addresses[%d]: %s is not an IPv4 or IPv6 address' % (index, address)
              for index, address in enumerate(addresses) if address_or_none(address) is None]
    for index, service in enumerate(services):
        if isinstance(service, dict) and service.get('address') is not None and address_or_none(service['address']) is None:
            errors.append('realserver_virtual_services[%d].address: %s is not an IPv4 or IPv6 address' % (index, service['address']))
    for index, extra in enumerate(extra_vips):
        if address_or_none(extra.get('address')) is None:
            errors.append('realserver_extra_vips[%d].address: %s is not an IPv4 or IPv6 address' % (index, extra.get('address')))
    for entry in entries:
        if entry['forwarding'] == 'tunnel' and ':' in entry['vip']:
            errors.append('%s: VIP %s with tunnel forwarding: IPv6 tunnels (ip6tnl0) are not supported, use dr or an IPv4 VIP'
                          % (entry['service'], entry['vip']))
    if nat and address_or_none(director_internal_address) is None:
        errors.append('realserver_director_internal_address (lvs_director_internal_address): this host is a NAT real server of %s'
                      ' and needs the director\'s internal address as its gateway, got "%s"'
                      % (', '.join(_unique(e['service'] for e in entries if e['forwarding'] == 'nat')), director_internal_address))
    return dict(entries=entries, nat=nat, dr_vips=dr_vips, tunnel_vips=tunnel_vips, arp=arp,
                kernel_modules=['ipip'] if tunnel_vips else [], interfaces=interfaces, sysctls=sysctls, errors=errors)
