# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Directors in failover with keepalived: the model's keepalived fields and keepalived.conf.

With ``director_keepalived`` on, keepalived is the one writer of the inventory's virtual services
(health checks add and remove real servers) and of the floating addresses (VRRP moves them):

- ``keepalived_service_spec``: the fields a virtual service has for keepalived (health_check,
  sorry_server, quorum, inhibit), beside lvs.cluster.ipvs_service's own (model.ipvs_service_spec);
- ``split_service``: one inventory entry as (ipvs_service's options, keepalived's fields);
- ``vrrp_instances``: the VRRP instances a director runs (the VIPs; for NAT, the real servers'
  gateway address too, in a sync group so that both move together), from its facts;
- ``render``: keepalived.conf, every value from the model, in a stable order;
- ``release_commands`` and ``unit_dropin``: keepalived.service's drop-in, which drops what keepalived
  held whenever it stops (a SIGKILL leaves it all behind) and starts it again.

Only the standard library: this also runs on the controller in the roles' filters.
"""

from __future__ import annotations

import copy
import ipaddress

from ansible_collections.lvs.cluster.plugins.module_utils import ipvs, model

HEALTH_CHECK_TYPES = ('tcp', 'http', 'https', 'command')
KEEPALIVED_FIELDS = ('health_check', 'sorry_server', 'quorum', 'inhibit')

_HEALTH_CHECK_SPEC = dict(
    type=dict(type='str', required=True, choices=list(HEALTH_CHECK_TYPES)),
    port=dict(type='int'),
    path=dict(type='str', default='/'),
    status=dict(type='int', default=200),
    command=dict(type='str'),
    interval=dict(type='int', default=2),
    timeout=dict(type='int', default=2),
    retries=dict(type='int', default=1),
    retry_delay=dict(type='int', default=1),
)
_KEEPALIVED_SERVICE_SPEC = dict(
    health_check=dict(type='dict', options=_HEALTH_CHECK_SPEC),
    sorry_server=dict(type='dict', options=dict(address=dict(type='str', required=True), port=dict(type='int'))),
    quorum=dict(type='int', default=1),
    inhibit=dict(type='bool', default=False),
)

_LB_KIND = {'nat': 'NAT', 'dr': 'DR', 'tunnel': 'TUN'}


def keepalived_service_spec():
    """The keepalived fields of a virtual service, as ArgumentSpecValidator's keyword arguments."""
    return copy.deepcopy(dict(argument_spec=_KEEPALIVED_SERVICE_SPEC))


def split_service(entry):
    """An inventory entry as (ipvs_service's options, keepalived's fields); 'name' is dropped."""
    options = dict(entry)
    options.pop('name', None)
    extra = dict((name, options.pop(name)) for name in KEEPALIVED_FIELDS if name in options)
    return options, extra


def keepalived_errors(extra, where):
    """What is wrong in a service's keepalived fields (already converted by their spec): the rules
    between them, each message naming its field."""
    errors = []
    check = extra.get('health_check') or {}
    if check:
        if check.get('type') == 'command' and not check.get('command'):
            errors.append('%s.health_check.command: is required with type command' % where)
        if check.get('type') != 'command' and check.get('command'):
            errors.append('%s.health_check.command: only with type command (type is %s)' % (where, check.get('type')))
        if check.get('port') is not None and not 1 <= check['port'] <= 65535:
            errors.append('%s.health_check.port: %s is not a port (1-65535)' % (where, check['port']))
        for name in ('interval', 'timeout'):
            if check.get(name) is not None and check[name] < 1:
                errors.append('%s.health_check.%s: must be 1 second or more, got %s' % (where, name, check[name]))
        for name in ('retries', 'retry_delay'):
            if check.get(name) is not None and check[name] < 0:
                errors.append('%s.health_check.%s: must be 0 or more, got %s' % (where, name, check[name]))
        if check.get('type') in ('http', 'https') and not str(check.get('path') or '').startswith('/'):
            errors.append('%s.health_check.path: must start with /, got %r' % (where, check.get('path')))
        if check.get('status') is not None and not 100 <= check['status'] <= 599:
            errors.append('%s.health_check.status: %s is not an HTTP status' % (where, check['status']))
    sorry = extra.get('sorry_server') or {}
    if sorry:
        try:
            model.normalize_address(sorry.get('address'))
        except ValueError:
            errors.append('%s.sorry_server.address: %s is not an IPv4 or IPv6 address' % (where, sorry.get('address')))
    if extra.get('quorum') is not None and extra['quorum'] < 1:
        errors.append('%s.quorum: must be 1 or more, got %s' % (where, extra['quorum']))
    return errors


# ---------------------------------------------------------------------------------------------
# VRRP

def _host(address):
    return '%s/%d' % (address, 128 if ':' in address else 32)


def _interface_networks(facts, name):
    """[(ip_interface)] of one interface, from Ansible's network facts."""
    info = model._interface_facts(facts, name)
    out = []
    for entry in ([info['ipv4']] if info.get('ipv4') else []) + list(info.get('ipv4_secondaries') or []):
        mask = entry.get('netmask') or entry.get('prefix')
        if entry.get('address') and mask:
            out.append(ipaddress.ip_interface('%s/%s' % (entry['address'], mask)))
    for entry in info.get('ipv6') or []:
        if entry.get('address') and entry.get('prefix') and not entry['address'].startswith('fe80'):
            out.append(ipaddress.ip_interface('%s/%s' % (entry['address'], entry['prefix'])))
    return out


def interface_for(facts, address, floating=()):
    """(interface, its own address on the network holding address) from Ansible's facts, ignoring the
    floating addresses this director may hold now; (None, None) if no interface's network holds it."""
    target = ipaddress.ip_address(address)
    for name in sorted(facts.get('interfaces') or []):
        if name == 'lo':
            continue
        for net in _interface_networks(facts, name):
            if str(net.ip) in floating or net.network.prefixlen == net.max_prefixlen:
                continue
            if target.version == net.version and target in net.network:
                return name, str(net.ip)
    return None, None


def peer_address(facts, network_address, floating=()):
    """A peer director's own address on the network that holds network_address (from its facts)."""
    return interface_for(facts, network_address, floating)[1]


def vrrp_instances(vips, facts, router_id, priority, advert_interval=1, nopreempt=False, peers=None,
                   gateway='', vip_interface='', name='lvs'):
    """The director's VRRP instances and what is wrong:

    ([{name, interface, router_id, priority, advert_interval, nopreempt, source, peers, addresses}],
     sync_group or '', [errors])

    One instance holds the VIPs (on vip_interface, else the interface whose network holds the first
    VIP); for NAT a second one holds the real servers' gateway address (on the interface whose
    network holds it), and the two form a sync group: they fail over together. peers: {host: facts}
    of the other directors (their address on each instance's network comes from them), or a list of
    addresses for the VIP instance.
    """
    errors = []
    floating = set(vips) | ({gateway} if gateway else set())
    instances = []
    wanted = []
    if vips:
        wanted.append(('%s_vip' % name, list(vips), vip_interface, 'director_vip_interface'))
    if gateway:
        wanted.append(('%s_gateway' % name, [gateway], '', 'director_internal_address'))
    for index, (inst_name, addresses, interface, field) in enumerate(wanted):
        found, source = interface_for(facts, addresses[0], floating)
        if interface:
            source = next((str(n.ip) for n in _interface_networks(facts, interface)
                           if str(n.ip) not in floating), None)
            found = interface if source else None
        if not found:
            errors.append('%s: no interface of this director is on the network of %s (give %s)'
                          % (field, addresses[0], 'director_vip_interface' if field == 'director_vip_interface' else 'an address in its network'))
            continue
        if isinstance(peers, dict):
            peer_list = []
            for host, peer_facts in sorted(peers.items()):
                address = peer_address(peer_facts or {}, source, floating)
                if address is None:
                    errors.append('director_vrrp_peers: no address of %s on the network of %s (is it in the play,'
                                  ' with facts? else list the peers\' addresses)' % (host, source))
                else:
                    peer_list.append(address)
        else:
            peer_list = list(peers or []) if index == 0 else []
            if index > 0 and peers:
                errors.append('director_vrrp_peers: a list of addresses serves one network; with NAT the'
                              ' directors are found from their group (director_vrrp_group)')
        instances.append(dict(name=inst_name, interface=found, router_id=router_id + index, priority=priority,
                              advert_interval=advert_interval, nopreempt=nopreempt, source=source,
                              peers=peer_list, addresses=[_host(a) + ' dev ' + found for a in addresses]))
    if not 1 <= router_id <= 255 - max(len(wanted) - 1, 0):
        errors.append('director_vrrp_router_id: %s is not a VRRP router id (1-255, the next one for NAT\'s gateway)' % router_id)
    if not 1 <= priority <= 254:
        errors.append('director_vrrp_priority: %s is not a VRRP priority (1-254)' % priority)
    return instances, ('%s_group' % name if len(instances) > 1 else ''), errors


# ---------------------------------------------------------------------------------------------
# keepalived.conf

def _block(lines, head, body, indent):
    lines.append('%s%s {' % (indent, head))
    lines.extend(body)
    lines.append('%s}' % indent)


def _checker(check, port, indent):
    inner = indent + '    '
    kind = check['type']
    body = []
    if kind in ('http', 'https'):
        body += ['%surl {' % inner, '%s    path %s' % (inner, check.get('path') or '/'),
                 '%s    status_code %d' % (inner, check.get('status') or 200), '%s}' % inner]
    if kind == 'command':
        body += ['%smisc_path "%s"' % (inner, check['command'].replace('"', '\\"')),
                 '%smisc_timeout %d' % (inner, check.get('timeout') or 2)]
    else:
        body += ['%sconnect_port %d' % (inner, check.get('port') or port),
                 '%sconnect_timeout %d' % (inner, check.get('timeout') or 2)]
    body += ['%sretry %d' % (inner, check.get('retries', 1)),
             '%sdelay_before_retry %d' % (inner, check.get('retry_delay', 1))]
    head = {'tcp': 'TCP_CHECK', 'http': 'HTTP_GET', 'https': 'SSL_GET', 'command': 'MISC_CHECK'}[kind]
    lines = []
    _block(lines, head, body, indent)
    return lines


def _virtual_server(service, extra, forwarding):
    """keepalived's virtual_server block of one present service (ipvs_service's options, converted)."""
    lines = []
    body = []
    i = '    '
    check = extra.get('health_check') or {}
    body.append('%sdelay_loop %d' % (i, check.get('interval') or 2))
    body.append('%slb_algo %s' % (i, service.get('scheduler') or model.DEFAULT_SCHEDULER))
    for flag in service.get('scheduler_flags') or []:
        body.append('%s%s' % (i, flag))
    body.append('%slb_kind %s' % (i, _LB_KIND[service.get('forwarding') or forwarding]))
    if service.get('fwmark') is None:
        body.append('%sprotocol %s' % (i, (service.get('protocol') or 'tcp').upper()))
    elif service.get('family') == 'ipv6':
        body.append('%sip_family inet6' % i)
    if service.get('persistent'):
        body.append('%spersistence_timeout %d' % (i, service['persistent']))
        if service.get('persistent_netmask'):
            body.append('%spersistence_granularity %s' % (i, service['persistent_netmask']))
    if service.get('persistence_engine'):
        body.append('%spersistence_engine %s' % (i, service['persistence_engine']))
    if service.get('one_packet'):
        body.append('%sops' % i)
    body.append('%squorum %d' % (i, extra.get('quorum') or 1))
    sorry = extra.get('sorry_server')
    if sorry:
        body.append('%ssorry_server %s %d' % (i, model.normalize_address(sorry['address']),
                                              sorry.get('port') or service.get('port') or 0))
    for rs in service.get('real_servers') or []:
        if not model.is_present(rs):
            continue
        port = rs.get('port') or service.get('port') or 0
        rs_body = ['%s    weight %d' % (i, rs.get('weight', 1) if rs.get('weight') is not None else 1)]
        rs_forwarding = model.effective_forwarding(rs, service, forwarding)
        if rs_forwarding != (service.get('forwarding') or forwarding):
            rs_body.append('%s    lvs_method %s' % (i, _LB_KIND[rs_forwarding]))
        if extra.get('inhibit'):
            rs_body.append('%s    inhibit_on_failure' % i)
        if rs.get('upper_threshold'):
            rs_body.append('%s    uthreshold %d' % (i, rs['upper_threshold']))
        if rs.get('lower_threshold'):
            rs_body.append('%s    lthreshold %d' % (i, rs['lower_threshold']))
        if check:
            rs_body += _checker(check, port, i + '    ')
        _block(body, 'real_server %s %d' % (model.normalize_address(rs['address']), port), rs_body, i)
    if service.get('fwmark') is not None:
        head = 'virtual_server fwmark %d' % service['fwmark']
    else:
        head = 'virtual_server %s %d' % (model.normalize_address(service['address']), service['port'])
    _block(lines, head, body, '')
    return lines


def render(services, forwarding, instances, sync_group='', router_name='', sync_daemon=None, timeouts=None):
    """keepalived.conf. services: [(ipvs_service options, keepalived fields)], converted by their
    specs; instances and sync_group: vrrp_instances(); sync_daemon: {interface, instance, id} or
    None; timeouts: {tcp, tcpfin, udp} (seconds, 0 = keep the kernel's)."""
    lines = ['# Managed by Ansible (lvs.cluster.director): changes made here are overwritten.', '']
    g = ['    router_id %s' % (router_name or 'lvs'),
         # scripts (health_check type command) run as root, a user keepalived needs no check of
         '    enable_script_security',
         '    script_user root']
    if sync_daemon:
        g.append('    lvs_sync_daemon %s %s id %d' % (sync_daemon['interface'], sync_daemon['instance'], sync_daemon['id']))
    timeouts = dict((k, int(v)) for k, v in (timeouts or {}).items() if int(v or 0))
    if timeouts:
        g.append('    lvs_timeouts %s' % ' '.join('%s %d' % (k, timeouts[k]) for k in ('tcp', 'tcpfin', 'udp') if k in timeouts))
    _block(lines, 'global_defs', g, '')
    if sync_group:
        lines.append('')
        _block(lines, 'vrrp_sync_group %s' % sync_group,
               ['    group {'] + ['        %s' % inst['name'] for inst in instances] + ['    }'], '')
    for inst in instances:
        body = ['    state BACKUP', '    interface %s' % inst['interface'],
                '    virtual_router_id %d' % inst['router_id'], '    priority %d' % inst['priority'],
                '    advert_int %s' % inst['advert_interval']]
        if inst.get('nopreempt'):
            body.append('    nopreempt')
        if inst.get('peers'):
            body.append('    unicast_src_ip %s' % inst['source'])
            body += ['    unicast_peer {'] + ['        %s' % p for p in inst['peers']] + ['    }']
        body += ['    virtual_ipaddress {'] + ['        %s' % a for a in inst['addresses']] + ['    }']
        lines.append('')
        _block(lines, 'vrrp_instance %s' % inst['name'], body, '')
    for service, extra in services:
        if not model.is_present(service):
            continue
        lines.append('')
        lines += _virtual_server(service, extra, forwarding)
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------
# keepalived's unit: what systemd releases whenever keepalived stops, and its restart

# keepalived that dies unannounced (SIGKILL, an OOM kill, a crash) leaves its addresses, its
# services and the kernel's sync daemon behind. systemd starts it again after RESTART_SEC; it
# starts as BACKUP (every instance's state in keepalived.conf), so it takes no address back before
# VRRP elects it. At most START_LIMIT_BURST starts in START_LIMIT_INTERVAL_SEC: a flap (a few
# deaths) is restarted every time; a keepalived that keeps dying stays stopped, holding nothing, and
# the peer keeps the addresses (each restart of a preempting master is one more failover).
RESTART_SEC = 1
START_LIMIT_BURST = 10
START_LIMIT_INTERVAL_SEC = 300


def release_commands(instances, services, sync_daemon=False):
    """What a director must drop when its keepalived stops for any reason, as argv lists: the
    floating addresses of its VRRP instances (vrrp_instances(); each on its interface, /32 or /128,
    so a host's own address of the same value is never touched), the virtual services keepalived
    writes (services: [(ipvs_service options, keepalived fields)], the present ones; a service of
    any other writer is left alone) and, when keepalived runs it, the sync daemon (both roles:
    keepalived starts the one its state wants)."""
    commands = []
    for inst in instances:
        for address in inst['addresses']:
            commands.append(['ip', 'address', 'del'] + address.split())
    for service in (pair[0] for pair in services):
        if model.is_present(service):
            commands.append(['ipvsadm', '-D'] + ipvs.service_switches(model.service_key(service)))
    if sync_daemon:
        commands += [['ipvsadm', '--stop-daemon', 'master'], ['ipvsadm', '--stop-daemon', 'backup']]
    return commands


def _exec_word(word):
    """One word of a systemd Exec line, quoted where systemd would read it otherwise."""
    word = word.replace('%', '%%').replace('$', '$$')
    if not word or any(c in word for c in ' \t\n"\'\\;'):
        word = '"%s"' % word.replace('\\', '\\\\').replace('"', '\\"')
    return word


def unit_dropin(release, restart_sec=RESTART_SEC, start_limit_burst=START_LIMIT_BURST,
                start_limit_interval_sec=START_LIMIT_INTERVAL_SEC):
    """keepalived.service's drop-in: restarted when it ends other than by `systemctl stop`, and
    release (release_commands()) run whenever it stops. ExecStopPost= runs after a SIGKILL too;
    '-' because keepalived that stops cleanly has dropped them itself."""
    lines = ['# Managed by Ansible (lvs.cluster.director): changes made here are overwritten.',
             '# keepalived that dies (SIGKILL, OOM, a crash) cleans nothing up: whenever it stops, systemd drops',
             '# what it held (floating addresses, virtual services, sync daemon), then starts it again (as',
             '# BACKUP: VRRP decides when it holds the addresses again). An operator\'s stop is not undone.',
             '[Unit]',
             'StartLimitIntervalSec=%d' % start_limit_interval_sec,
             'StartLimitBurst=%d' % start_limit_burst,
             '',
             '[Service]',
             # a stop's SIGTERM to keepalived alone (it stops its children itself); when it died on its
             # own, SIGKILL at once for what is left (children it had started just before)
             'KillMode=mixed',
             'Restart=always',
             'RestartSec=%d' % restart_sec]
    lines += ['ExecStopPost=-%s' % ' '.join(_exec_word(word) for word in argv) for argv in release]
    return '\n'.join(lines) + '\n'
