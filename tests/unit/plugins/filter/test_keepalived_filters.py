"""The roles' failover filters: keepalived.conf, the rules keepalived does not own, the planned drain
and IPVS's kernel settings (plugins/filter/ipvs.py)."""

from __future__ import annotations

import copy

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.lvs.cluster.plugins.filter.ipvs import (
    active_connections, director_config, drain_real_servers, drain_unknown, ipvs_rules_without, ipvs_service_errors,
    ipvs_service_keys, ipvs_timeouts_differ, keepalived_config)
from ansible_collections.lvs.cluster.plugins.module_utils import keepalived, model

from conftest import fixture_text

NET24 = '255.255.255.0'


def _facts(**interfaces):
    """Ansible's network facts: name=[IPv4 address, ...], each in a /24 but those given as 'a/32'."""
    facts = {'interfaces': ['lo'] + sorted(interfaces), 'lo': {'ipv4': {'address': '127.0.0.1', 'netmask': '255.0.0.0'}}}
    for name, addresses in interfaces.items():
        held = [{'address': a.split('/')[0], 'netmask': '255.255.255.255' if a.endswith('/32') else NET24} for a in addresses]
        facts[name] = {'ipv4': held[0], 'ipv4_secondaries': held[1:]}
    return facts


# Two NAT directors; d1 holds the VIP and the real servers' gateway now.
D1 = _facts(eth0=['198.18.0.130', '198.18.0.144/32'], eth1=['198.18.1.130', '198.18.1.1/32'])
D2 = _facts(eth0=['198.18.0.131'], eth1=['198.18.1.131'])
WEB = {'name': 'web', 'address': '198.18.0.144', 'port': 80, 'health_check': {'type': 'http', 'path': '/health'},
       'quorum': 1, 'inhibit': False,
       'real_servers': [{'address': '198.18.1.132', 'port': 8080}, {'address': '198.18.1.133', 'port': 8080}]}

NAT_D2_CONF = """\
# Managed by Ansible (lvs.cluster.director): changes made here are overwritten.

global_defs {
    router_id d2
    enable_script_security
    script_user root
    lvs_sync_daemon eth0 lvs_vip id 60
}

vrrp_sync_group lvs_group {
    group {
        lvs_vip
        lvs_gateway
    }
}

vrrp_instance lvs_vip {
    state BACKUP
    interface eth0
    virtual_router_id 60
    priority 140
    advert_int 1
    nopreempt
    unicast_src_ip 198.18.0.131
    unicast_peer {
        198.18.0.130
    }
    virtual_ipaddress {
        198.18.0.144/32 dev eth0
    }
}

vrrp_instance lvs_gateway {
    state BACKUP
    interface eth1
    virtual_router_id 61
    priority 140
    advert_int 1
    nopreempt
    unicast_src_ip 198.18.1.131
    unicast_peer {
        198.18.1.130
    }
    virtual_ipaddress {
        198.18.1.1/32 dev eth1
    }
}

virtual_server 198.18.0.144 80 {
    delay_loop 2
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    quorum 1
    real_server 198.18.1.132 8080 {
        weight 1
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_port 8080
            connect_timeout 2
            retry 1
            delay_before_retry 1
        }
    }
    real_server 198.18.1.133 8080 {
        weight 1
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_port 8080
            connect_timeout 2
            retry 1
            delay_before_retry 1
        }
    }
}
"""


# ---------------------------------------------------------------------------------------------
# keepalived_config

def test_the_keepalived_conf_of_the_backup_nat_director():
    config = keepalived_config([WEB], 'nat', facts=D2, router_id='60', priority='140', nopreempt=True, peers={'d1': D1},
                               gateway='198.18.1.1', timeouts={'tcp': 0, 'tcpfin': 0, 'udp': 0}, router_name='d2')
    assert config['errors'] == []
    assert config['content'] == NAT_D2_CONF
    assert [(i['name'], i['router_id'], i['source'], i['peers']) for i in config['instances']] == [
        ('lvs_vip', 60, '198.18.0.131', ['198.18.0.130']), ('lvs_gateway', 61, '198.18.1.131', ['198.18.1.130'])]


def test_the_unit_drop_in_of_the_backup_nat_director_releases_what_its_keepalived_holds():
    absent = dict(WEB, address='198.18.0.145', state='absent')
    config = keepalived_config([WEB, absent], 'nat', facts=D2, peers={'d1': D1}, gateway='198.18.1.1', router_name='d2')
    assert config['errors'] == []
    # the absent service is no longer keepalived's: its table entry is not released
    assert config['release'] == [
        ['ip', 'address', 'del', '198.18.0.144/32', 'dev', 'eth0'], ['ip', 'address', 'del', '198.18.1.1/32', 'dev', 'eth1'],
        ['ipvsadm', '-D', '-t', '198.18.0.144:80'], ['ipvsadm', '--stop-daemon', 'master'], ['ipvsadm', '--stop-daemon', 'backup']]
    # the drop-in's text (tests/unit/plugins/module_utils/test_keepalived.py): ExecStopPost= lines in that order
    assert config['dropin'] == keepalived.unit_dropin(config['release'])
    assert config['dropin'].endswith('RestartSec=1\nExecStopPost=-ip address del 198.18.0.144/32 dev eth0\n'
                                     'ExecStopPost=-ip address del 198.18.1.1/32 dev eth1\n'
                                     'ExecStopPost=-ipvsadm -D -t 198.18.0.144:80\n'
                                     'ExecStopPost=-ipvsadm --stop-daemon master\nExecStopPost=-ipvsadm --stop-daemon backup\n')


def test_without_sync_daemon_the_drop_in_leaves_the_sync_daemons_alone():
    config = keepalived_config([WEB], 'nat', facts=D2, gateway='198.18.1.1', sync_daemon=False)
    assert config['errors'] == [] and 'stop-daemon' not in config['dropin']
    assert [argv[:2] for argv in config['release']] == [['ip', 'address'], ['ip', 'address'], ['ipvsadm', '-D']]


def test_the_directors_configs_differ_only_in_their_own_addresses_priority_and_name():
    common = dict(router_id=51, peers=None, gateway='198.18.1.1')
    d1 = keepalived_config([WEB], 'nat', facts=D1, priority=150, router_name='d1', **common)['content']
    d2 = keepalived_config([WEB], 'nat', facts=D2, priority=140, router_name='d2', **common)['content']
    changed = [(a, b) for a, b in zip(d1.splitlines(), d2.splitlines()) if a != b]
    assert changed == [('    router_id d1', '    router_id d2'), ('    priority 150', '    priority 140'),
                       ('    priority 150', '    priority 140')]


def test_the_gateway_is_given_in_any_spelling():
    facts = copy.deepcopy(D2)
    facts['eth1']['ipv6'] = [{'address': '2001:db8:1::130', 'prefix': '64', 'scope': 'global'}]
    service = {'address': '198.18.0.144', 'port': 80, 'real_servers': [{'address': '198.18.1.132'}]}
    config = keepalived_config([service], 'nat', facts=facts, gateway='2001:DB8:1::1', sync_daemon=False)
    assert config['errors'] == []
    assert '        2001:db8:1::1/128 dev eth1\n' in config['content']


def test_direct_routing_gives_one_instance_and_no_sync_group():
    service = {'address': '198.18.0.144', 'port': 80, 'forwarding': 'dr', 'real_servers': [{'address': '198.18.1.132'}]}
    config = keepalived_config([service, dict(service, address='198.18.0.145')], 'dr', facts=D2, peers=['198.18.0.130'])
    assert config['errors'] == []
    assert [i['name'] for i in config['instances']] == ['lvs_vip']
    assert config['instances'][0]['addresses'] == ['198.18.0.144/32 dev eth0', '198.18.0.145/32 dev eth0']
    assert 'vrrp_sync_group' not in config['content']
    assert '    lvs_sync_daemon eth0 lvs_vip id 51\n' in config['content']


def test_the_sync_daemon_interface_given_wins_and_it_can_be_off():
    config = keepalived_config([WEB], 'nat', facts=D2, gateway='198.18.1.1', sync_daemon_interface='eth1')
    assert '    lvs_sync_daemon eth1 lvs_vip id 51\n' in config['content']
    config = keepalived_config([WEB], 'nat', facts=D2, gateway='198.18.1.1', sync_daemon=False)
    assert 'lvs_sync_daemon' not in config['content']


def test_absent_services_hold_no_vip():
    services = [dict(WEB, forwarding='dr', real_servers=[{'address': '198.18.1.132'}]),
                dict(WEB, address='198.18.0.145', state='absent', forwarding='nat')]
    config = keepalived_config(services, 'dr', facts=D2)
    assert config['errors'] == []
    assert config['instances'][0]['addresses'] == ['198.18.0.144/32 dev eth0']
    assert '198.18.0.145' not in config['content']


def test_a_bad_service_gives_its_errors_and_no_content():
    bad = dict(WEB, health_check={'type': 'command'})
    config = keepalived_config([WEB, bad, 'web'], 'nat', facts=D2, gateway='198.18.1.1')
    assert (config['content'], config['dropin'], config['release']) == ('', '', [])
    assert config['errors'] == ['director_virtual_services[1].health_check.command: is required with type command',
                                'director_virtual_services[2]: must be a dictionary (a virtual service)']


def test_a_vrrp_error_gives_no_content():
    config = keepalived_config([WEB], 'nat', facts=D2, gateway='198.18.1.1', priority=0)
    assert config['content'] == ''
    assert config['errors'] == ['director_vrrp_priority: 0 is not a VRRP priority (1-254)']


def test_a_director_without_interface_on_the_vip_network_names_director_vip_interface():
    config = keepalived_config([dict(WEB, address='203.0.113.10')], 'nat', facts=D2, gateway='198.18.1.1')
    assert config['content'] == ''
    assert config['errors'] == ['director_vip_interface: no interface of this director is on the network of'
                                ' 203.0.113.10 (give director_vip_interface)']


def test_a_peer_without_facts_names_director_vrrp_peers():
    config = keepalived_config([WEB], 'nat', facts=D1, gateway='198.18.1.1', peers={'d2': D2, 'd3': {}})
    assert config['content'] == ''
    assert [e.split(' (')[0] for e in config['errors']] == [
        'director_vrrp_peers: no address of d3 on the network of 198.18.0.130',
        'director_vrrp_peers: no address of d3 on the network of 198.18.1.130']


def test_keepalived_config_refuses_what_is_not_a_list():
    with pytest.raises(AnsibleFilterError):
        keepalived_config({'address': '198.18.0.144'}, 'nat')


# ---------------------------------------------------------------------------------------------
# the keepalived fields in the input check

def test_the_keepalived_fields_are_accepted():
    services = [dict(WEB, quorum='2', inhibit='yes', sorry_server={'address': '2001:DB8::9', 'port': '80'}),
                {'fwmark': 7, 'health_check': {'type': 'command', 'command': '/usr/local/bin/check', 'interval': '5'},
                 'real_servers': [{'address': '198.18.1.132'}]},
                dict(WEB, address='198.18.0.145', health_check={'type': 'https', 'port': 8443, 'status': 204})]
    assert ipvs_service_errors(services, forwarding='nat') == []
    assert ipvs_service_keys(services, forwarding='nat') == [
        {'protocol': 'tcp', 'address': '198.18.0.144', 'port': 80}, {'fwmark': 7, 'family': 'ipv4'},
        {'protocol': 'tcp', 'address': '198.18.0.145', 'port': 80}]


@pytest.mark.parametrize('fields, error', [
    ({'health_check': {'type': 'command'}},
     'director_virtual_services[0].health_check.command: is required with type command'),
    ({'health_check': {'type': 'tcp', 'command': '/bin/true'}},
     'director_virtual_services[0].health_check.command: only with type command (type is tcp)'),
    ({'health_check': {'type': 'http', 'path': 'health'}},
     "director_virtual_services[0].health_check.path: must start with /, got 'health'"),
    ({'health_check': {'type': 'tcp', 'port': 70000}},
     'director_virtual_services[0].health_check.port: 70000 is not a port (1-65535)'),
    ({'sorry_server': {'address': '198.18.1.300'}},
     'director_virtual_services[0].sorry_server.address: 198.18.1.300 is not an IPv4 or IPv6 address'),
    ({'quorum': 0}, 'director_virtual_services[0].quorum: must be 1 or more, got 0'),
])
def test_a_bad_keepalived_field_is_named(fields, error):
    service = dict({'address': '198.18.0.144', 'port': 80}, **fields)
    assert ipvs_service_errors([service], forwarding='nat', name='director_virtual_services') == [error]


@pytest.mark.parametrize('fields, field, words', [
    ({'health_check': {'type': 'ping'}}, 'health_check', 'value of type must be one of: tcp, http, https, command, got: ping'),
    ({'health_check': {'type': 'tcp', 'cmd': '/bin/true'}}, 'health_check', 'health_check.cmd'),
    ({'health_check': {'port': 80}}, 'health_check', 'missing required arguments: type'),
    ({'sorry_server': {'port': 80}}, 'sorry_server', 'missing required arguments: address'),
    ({'sorry_server': '198.18.1.200'}, 'sorry_server', 'dict'),
    ({'quorum': 'two'}, 'quorum', "argument 'quorum' is of type str"),
    ({'inhibit': 'maybe'}, 'inhibit', "argument 'inhibit' is of type str"),
])
def test_a_keepalived_field_of_the_wrong_shape_is_named(fields, field, words):
    errors = ipvs_service_errors([dict(WEB, **fields)], forwarding='nat')
    assert errors and all(e.startswith('virtual_services[0] (web).%s: ' % field) for e in errors), errors
    assert any(words in e for e in errors), errors


def test_a_bad_keepalived_field_is_reported_with_the_services_other_errors():
    errors = ipvs_service_errors([dict(WEB, port=0, quorum=0, real_servers=[])], forwarding='nat')
    assert 'virtual_services[0] (web).quorum: must be 1 or more, got 0' in errors


def test_keys_of_a_service_with_a_bad_keepalived_field_are_refused():
    with pytest.raises(AnsibleFilterError, match=r'virtual_services\[0\]\.health_check\.command: is required'):
        ipvs_service_keys([dict(WEB, health_check={'type': 'command'})], forwarding='nat')


# ---------------------------------------------------------------------------------------------
# ipvs_rules_without: what the boot restore may load beside keepalived

SN_MIXED = fixture_text('sn_mixed.txt')


def test_the_rules_of_keepalived_services_are_dropped():
    services = [{'address': '198.18.0.144', 'port': 80, 'persistent': 3, 'forwarding': 'nat', 'health_check': {'type': 'tcp'},
                 'real_servers': [{'address': '198.18.1.132'}, {'address': '198.18.1.133', 'port': 8080}]},
                {'fwmark': 7, 'scheduler': 'sh'},
                {'address': '2001:DB8::1', 'port': 443}]
    kept = ipvs_rules_without(SN_MIXED, services, forwarding='nat')
    assert kept.splitlines() == [line for line in SN_MIXED.splitlines()
                                 if not line.startswith(('-A -t 198.18.0.144:80 ', '-a -t 198.18.0.144:80 ',
                                                         '-A -f 7 ', '-a -f 7 ', '-A -t [2001:db8::1]:443 ',
                                                         '-a -t [2001:db8::1]:443 '))]
    assert '-A -u 198.18.0.144:53 -s rr' in kept.splitlines()   # the same address, another protocol and port
    assert '-A -f 8 -6 -s mh -p 60 -M 64 -b mh-port' in kept.splitlines()


def test_without_services_the_rules_are_kept():
    assert ipvs_rules_without(SN_MIXED, []) == SN_MIXED.rstrip('\n')
    assert ipvs_rules_without('', [WEB], 'nat') == ''
    assert ipvs_rules_without(None, [WEB], 'nat') == ''


def test_rules_of_an_absent_service_are_dropped_too():
    kept = ipvs_rules_without(SN_MIXED, [{'protocol': 'udp', 'address': '198.18.0.144', 'port': 53, 'state': 'absent'}])
    assert not any('198.18.0.144:53' in line for line in kept.splitlines())
    assert len(kept.splitlines()) == len(SN_MIXED.splitlines()) - 3


def test_rules_without_a_bad_service_are_refused():
    with pytest.raises(AnsibleFilterError, match=r'ipvs_rules_without: virtual_services\.port: port 0 is out of range'):
        ipvs_rules_without(SN_MIXED, [{'address': '198.18.0.144', 'port': 0}])


# ---------------------------------------------------------------------------------------------
# the planned drain

DRAIN_V6 = [{'address': '2001:DB8::2', 'weight': 3}, {'address': '2001:db8::3'}]
DRAIN_WEB = [{'address': '198.18.1.132', 'weight': 2}, {'address': '198.18.1.133'}, {'address': 'not-an-address'}]
DRAIN = [{'name': 'v6', 'address': '2001:db8::10', 'port': 80, 'real_servers': DRAIN_V6},
         {'name': 'web', 'address': '198.18.0.144', 'port': 80, 'real_servers': DRAIN_WEB},
         {'fwmark': 7}]


def test_drained_real_servers_get_weight_0_in_every_service():
    before = copy.deepcopy(DRAIN)
    drained = drain_real_servers(DRAIN, ['2001:db8::2', '198.18.1.132'])
    assert drained == [
        {'name': 'v6', 'address': '2001:db8::10', 'port': 80, 'real_servers': [
            {'address': '2001:DB8::2', 'weight': 0}, {'address': '2001:db8::3'}]},
        {'name': 'web', 'address': '198.18.0.144', 'port': 80, 'real_servers': [
            {'address': '198.18.1.132', 'weight': 0}, {'address': '198.18.1.133'}, {'address': 'not-an-address'}]},
        {'fwmark': 7, 'real_servers': []}]
    assert DRAIN == before   # the inventory's services are left as they were


def test_removed_real_servers_get_state_absent_and_keep_their_weight():
    removed = drain_real_servers(DRAIN, ['2001:DB8:0::3'], 'absent')
    assert removed[0]['real_servers'] == [{'address': '2001:DB8::2', 'weight': 3}, {'address': '2001:db8::3', 'state': 'absent'}]
    assert removed[1] == DRAIN[1]


def test_draining_nobody_changes_nothing():
    assert drain_real_servers(DRAIN[:2], []) == DRAIN[:2]


def test_draining_a_non_address_is_refused():
    with pytest.raises(ValueError):
        drain_real_servers(DRAIN, ['rs1'])
    with pytest.raises(AnsibleFilterError):
        drain_real_servers(DRAIN, '198.18.1.132')


def test_unknown_drain_addresses_are_those_of_no_present_real_server():
    services = DRAIN + [{'address': '198.18.0.145', 'port': 80, 'state': 'absent', 'real_servers': [{'address': '198.18.1.140'}]},
                        {'address': '198.18.0.146', 'port': 80, 'real_servers': [{'address': '198.18.1.141', 'state': 'absent'}]},
                        'web']
    assert drain_unknown(services, ['2001:DB8::2', '198.18.1.133', '198.18.1.140', '198.18.1.141', 'rs9', '198.18.1.9']) == [
        '198.18.1.140', '198.18.1.141', 'rs9', '198.18.1.9']
    assert drain_unknown(services, []) == []


def _info(*real_servers):
    """A service as lvs.cluster.ipvs_info returns it with counters: real_servers (address, active)."""
    return {'protocol': 'tcp', 'address': '198.18.0.144', 'port': 80, 'real_servers': [
        {'address': a, 'port': 80, 'weight': 0, 'active_connections': n, 'inactive_connections': 7} for a, n in real_servers]}


def test_active_connections_are_summed_over_the_services():
    services = [_info(('198.18.1.132', 3), ('198.18.1.133', 5)), _info(('198.18.1.132', 4), ('2001:db8::2', 1)),
                {'fwmark': 7, 'real_servers': []}]
    assert active_connections(services, ['198.18.1.132', '2001:DB8::2']) == 8
    assert active_connections(services, ['198.18.1.140']) == 0
    assert active_connections([], ['198.18.1.132']) == 0


def test_active_connections_need_the_counters():
    services = [{'address': '198.18.0.144', 'port': 80, 'real_servers': [{'address': '198.18.1.132', 'port': 80}]}]
    with pytest.raises(AnsibleFilterError, match='without counters'):
        active_connections(services, ['198.18.1.132'])


# ---------------------------------------------------------------------------------------------
# IPVS's timeouts and kernel settings

LISTING = 'Timeout (tcp tcpfin udp): 900 120 300\n'


@pytest.mark.parametrize('wanted, differ', [
    ({'tcp': 0, 'tcpfin': 0, 'udp': 0}, False),
    ({'tcp': 900, 'tcpfin': 120, 'udp': 300}, False),
    ({'tcp': 900, 'tcpfin': 0, 'udp': 0}, False),
    ({'tcp': 7200, 'tcpfin': 0, 'udp': 0}, True),
    ({'tcp': 0, 'tcpfin': 0, 'udp': 60}, True),
    ({'tcp': '900', 'udp': '0'}, False),
    ({'tcpfin': '60'}, True),
    ({'tcp': None}, False),
    ({}, False),
    (None, False),
])
def test_timeouts_differ_only_where_one_is_given(wanted, differ):
    assert ipvs_timeouts_differ(wanted, LISTING) is differ


@pytest.mark.parametrize('listing', ['', None, 'Timeout (tcp tcpfin udp): 900 120', 'ipvsadm: command not found',
                                     'Timeout (tcp tcpfin udp): 900 120 300 60'])
def test_unreadable_timeouts_are_refused(listing):
    with pytest.raises(AnsibleFilterError, match='cannot read the timeouts'):
        ipvs_timeouts_differ({'tcp': 900}, listing)


SEND_REDIRECTS = [{'name': 'net.ipv4.conf.all.send_redirects', 'value': '0'},
                  {'name': 'net.ipv4.conf.default.send_redirects', 'value': '0'}]


def test_ipvs_sysctls_come_last_in_name_order_and_none_is_left_alone():
    sysctls = {'expire_quiescent_template': 1, 'expire_nodest_conn': True, 'conn_reuse_mode': '2', 'sync_version': None}
    config = model.director_config([WEB], 'dr', sysctl_interfaces=[], ipvs_sysctls=sysctls)
    assert config['sysctls'] == SEND_REDIRECTS + [
        {'name': 'net.ipv4.vs.conn_reuse_mode', 'value': '2'}, {'name': 'net.ipv4.vs.expire_nodest_conn', 'value': '1'},
        {'name': 'net.ipv4.vs.expire_quiescent_template', 'value': '1'}]


def test_the_director_config_filter_passes_the_ipvs_sysctls():
    config = director_config([WEB], 'nat', internal_network='198.18.1.0/24', ipvs_sysctls={'expire_nodest_conn': 0})
    assert config['sysctls'] == [{'name': 'net.ipv4.ip_forward', 'value': '1'}] + SEND_REDIRECTS + [
        {'name': 'net.ipv4.vs.expire_nodest_conn', 'value': '0'}]
    assert [s for s in director_config([WEB], 'dr')['sysctls'] if s['name'].startswith('net.ipv4.vs.')] == []
    assert [s for s in director_config([WEB], 'dr', ipvs_sysctls=None)['sysctls'] if s['name'].startswith('net.ipv4.vs.')] == []
