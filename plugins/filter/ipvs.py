# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' filters: the cluster model of module_utils/model.py, run on the controller.

ipvs_service_errors checks virtual services with lvs.cluster.ipvs_service's own argument spec
(ArgumentSpecValidator, so text is converted exactly as the module converts it) and then with its
own rules; director_config and realserver_config say what each role sets up.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.lvs.cluster.plugins.module_utils import ipvs, ipvs_table, keepalived, model


def _service(spec, forwarding, where, converted=None):
    """A virtual service from inventory checked as ipvs_service checks its options (and its
    keepalived fields by their own spec): (Service, []) or (None, [messages, each naming the field]).
    converted, a dict, receives the options and the keepalived fields as converted."""
    validated, extra, errors, rule_errors = ipvs_table.check_entry(spec, forwarding, where)
    if errors:
        return None, errors
    # The rules between options (fwmark or address and port...) are the module's own too: its
    # message names the field, where the argument spec's names only the rule.
    try:
        service = ipvs.desired_service(validated)[0]
    except ipvs.ValidationError as exc:
        return None, ['%s.%s' % (where, exc)]
    if rule_errors:
        return None, rule_errors
    if converted is not None:
        converted.update(options=validated, extra=extra)
    return service, []


def ipvs_service_errors(services, forwarding='dr', name='virtual_services'):
    """Every problem with these services, as ipvs_service would name it, prefixed by where it is."""
    if not isinstance(services, list):
        raise AnsibleFilterError('ipvs_service_errors: %s must be a list of virtual services' % name)
    errors = []
    seen = {}
    for index, spec in enumerate(services):
        where = '%s[%d]' % (name, index)
        if not isinstance(spec, dict):
            errors.append('%s: must be a dictionary (a virtual service)' % where)
            continue
        if spec.get('name'):
            where += ' (%s)' % spec['name']
        service, service_errors = _service(spec, forwarding, where)
        if service_errors:
            errors += service_errors
            continue
        if service.key in seen:
            errors.append('%s: the same virtual service as %s (%s)' % (where, seen[service.key], ipvs.describe_key(service.key)))
        seen.setdefault(service.key, where)
    return errors


def ipvs_service_keys(services, forwarding='dr'):
    """What names each virtual service the kernel is to hold (state present), as ipvs_service
    options: {protocol, address, port} with the address as the kernel prints it, or {fwmark, family}."""
    if not isinstance(services, list):
        raise AnsibleFilterError('ipvs_service_keys: expected a list of virtual services')
    keys = []
    for index, spec in enumerate(services):
        if not isinstance(spec, dict) or not model.is_present(spec):
            continue
        service, errors = _service(spec, forwarding, 'virtual_services[%d]' % index)
        if errors:
            raise AnsibleFilterError('ipvs_service_keys: %s' % '; '.join(errors))
        keys.append(model.key_options(service.key))
    return keys


def _list(value, what):
    if not isinstance(value, list):
        raise AnsibleFilterError('%s must be a list, got %r' % (what, value))
    return value


def director_config(services, forwarding, facts=None, sysctl_interfaces=None, internal_network='',
                    masquerade=True, vip_interface='', ipvs_sysctls=None, internal_address=''):
    """What lvs.cluster.director sets up for these services (module_utils/model.py director_config)."""
    return model.director_config(_list(services, 'director_config: the virtual services'), forwarding,
                                 facts=facts or {}, sysctl_interfaces=sysctl_interfaces or [],
                                 internal_network=internal_network or '', masquerade=bool(masquerade),
                                 vip_interface=vip_interface or '', ipvs_sysctls=ipvs_sysctls or {},
                                 internal_address=internal_address or '')


def realserver_config(services, addresses, forwarding, extra_vips=None, facts=None, rp_filter=2,
                      director_internal_address=''):
    """What lvs.cluster.realserver sets up on a host with these addresses (model.realserver_config)."""
    return model.realserver_config(_list(services, 'realserver_config: the virtual services'),
                                   _list(addresses, 'realserver_config: addresses'), forwarding,
                                   extra_vips=extra_vips or [], facts=facts or {}, rp_filter=rp_filter,
                                   director_internal_address=director_internal_address or '')


def keepalived_config(services, forwarding, facts=None, router_id=51, priority=100, advert_interval=1,
                      nopreempt=False, peers=None, gateway='', vip_interface='', sync_daemon=True,
                      sync_daemon_interface='', timeouts=None, router_name=''):
    """keepalived.conf of a director (module_utils/keepalived.py): {content, instances, release,
    dropin, errors}. release: what systemd drops whenever keepalived stops (argv lists), dropin:
    keepalived.service's drop-in that does it and restarts keepalived. The services are checked
    first (their errors, naming the field, come back and nothing is rendered); gateway is the real
    servers' gateway address, given when a real server uses NAT."""
    errors = []
    converted = []
    for index, spec in enumerate(_list(services, 'keepalived_config: the virtual services')):
        if not isinstance(spec, dict):
            errors.append('director_virtual_services[%d]: must be a dictionary (a virtual service)' % index)
            continue
        out = {}
        service_errors = _service(spec, forwarding, 'director_virtual_services[%d]' % index, converted=out)[1]
        if service_errors:
            errors += service_errors
        else:
            converted.append((out['options'], out['extra']))
    vips = model.director_config([pair[0] for pair in converted], forwarding)['vips']
    instances, sync_group, vrrp_errors = keepalived.vrrp_instances(
        vips, facts or {}, int(router_id), int(priority), advert_interval=advert_interval, nopreempt=bool(nopreempt),
        peers=peers, gateway=model.normalize_address(gateway) if gateway else '', vip_interface=vip_interface or '')
    errors += vrrp_errors
    if errors:
        return dict(content='', instances=instances, release=[], dropin='', errors=errors)
    daemon = None
    if sync_daemon and instances:
        daemon = dict(interface=sync_daemon_interface or instances[0]['interface'], instance=instances[0]['name'],
                      id=int(router_id))
    content = keepalived.render(converted, forwarding, instances, sync_group=sync_group, router_name=router_name,
                                sync_daemon=daemon, timeouts=timeouts)
    release = keepalived.release_commands(instances, converted, sync_daemon=daemon is not None)
    return dict(content=content, instances=instances, release=release, dropin=keepalived.unit_dropin(release), errors=[])


def ipvs_rules_without(rules, services, forwarding='dr'):
    """`ipvsadm -S -n` text without the lines of these virtual services (another writer's, such as
    keepalived's): what the boot restore may load."""
    drop = set()
    for spec in _list(services, 'ipvs_rules_without: the virtual services'):
        if isinstance(spec, dict):
            service, errors = _service(spec, forwarding, 'virtual_services')
            if errors:
                raise AnsibleFilterError('ipvs_rules_without: %s' % '; '.join(errors))
            drop.add(service.key)
    kept = []
    for line in (rules or '').splitlines():
        if line.strip():
            rule = ipvs.parse_rule(line)
            if (rule[1].key if rule[0] == 'service' else rule[1]) in drop:
                continue
        kept.append(line)
    return '\n'.join(kept)


def drain_real_servers(services, addresses, state='drained'):
    """The services with the real servers at these addresses drained (weight 0: no new connections)
    or, with state absent, removed. Addresses compare as addresses (any spelling)."""
    wanted = set(model.normalize_address(a) for a in _list(addresses, 'drain_real_servers: the addresses'))
    out = []
    for service in _list(services, 'drain_real_servers: the virtual services'):
        service = dict(service)
        real_servers = []
        for rs in service.get('real_servers') or []:
            rs = dict(rs)
            if model.address_or_none(rs.get('address')) in wanted:
                if state == 'absent':
                    rs['state'] = 'absent'
                else:
                    rs['weight'] = 0
            real_servers.append(rs)
        service['real_servers'] = real_servers
        out.append(service)
    return out


def drain_unknown(services, addresses):
    """The addresses that are no present real server of any of these services."""
    known = set()
    for service in _list(services, 'drain_unknown: the virtual services'):
        for rs in (service.get('real_servers') or []) if isinstance(service, dict) and model.is_present(service) else []:
            if isinstance(rs, dict) and model.is_present(rs):
                known.add(model.address_or_none(rs.get('address')))
    known.discard(None)
    return [str(address) for address in _list(addresses, 'drain_unknown: the addresses')
            if model.address_or_none(address) not in known]


def active_connections(services, addresses):
    """The active connections of the real servers at these addresses, summed over the services
    lvs.cluster.ipvs_info returned (with counters)."""
    wanted = set(model.normalize_address(a) for a in _list(addresses, 'active_connections: the addresses'))
    total = 0
    for service in _list(services, 'active_connections: the services'):
        for rs in service.get('real_servers') or []:
            if model.normalize_address(rs['address']) in wanted:
                if 'active_connections' not in rs:
                    raise AnsibleFilterError('active_connections: the services were read without counters')
                total += int(rs['active_connections'])
    return total


def ipvs_timeouts_differ(wanted, listing):
    """Whether a timeout given (not 0) differs from the kernel's, as `ipvsadm -L --timeout` prints
    them ("Timeout (tcp tcpfin udp): 900 120 300")."""
    numbers = [int(word) for word in (listing or '').replace(':', ' ').split() if word.isdigit()]
    if len(numbers) != 3:
        raise AnsibleFilterError('ipvs_timeouts_differ: cannot read the timeouts from %r' % listing)
    now = dict(zip(('tcp', 'tcpfin', 'udp'), numbers))
    return any(int(value or 0) and int(value) != now[name] for name, value in (wanted or {}).items())


class FilterModule:
    """lvs.cluster filters."""

    def filters(self):
        return {'ipvs_service_errors': ipvs_service_errors, 'ipvs_service_keys': ipvs_service_keys,
                'director_config': director_config, 'realserver_config': realserver_config,
                'keepalived_config': keepalived_config, 'ipvs_rules_without': ipvs_rules_without,
                'drain_real_servers': drain_real_servers, 'ipvs_timeouts_differ': ipvs_timeouts_differ,
                'drain_unknown': drain_unknown, 'active_connections': active_connections}
