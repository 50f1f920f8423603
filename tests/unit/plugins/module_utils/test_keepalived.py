"""Directors in failover: keepalived's fields, VRRP instances and keepalived.conf (module_utils/keepalived.py)."""

from __future__ import annotations

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.lvs.cluster.plugins.module_utils import keepalived, model


def _facts(**interfaces):
    """Ansible's network facts: name=[(address, netmask or prefix), ...], the first one primary."""
    facts = {'interfaces': ['lo'] + sorted(interfaces), 'lo': {'ipv4': {'address': '127.0.0.1', 'netmask': '255.0.0.0'}}}
    for name, addresses in interfaces.items():
        v4 = [{'address': a, 'netmask': m} for a, m in addresses if ':' not in a]
        v6 = [{'address': a, 'prefix': m, 'scope': 'global'} for a, m in addresses if ':' in a]
        info = {}
        if v4:
            info.update(ipv4=v4[0], ipv4_secondaries=v4[1:])
        if v6:
            info['ipv6'] = v6
        facts[name] = info
    return facts


NET24 = '255.255.255.0'
HOST = '255.255.255.255'
# Two NAT directors: eth0 on the clients' network (VIP 198.18.0.144), eth1 on the real servers'
# (their gateway 198.18.1.1). d1 holds both floating addresses now (as keepalived adds them, /32).
D1 = _facts(eth0=[('198.18.0.130', NET24), ('198.18.0.144', HOST)], eth1=[('198.18.1.130', NET24), ('198.18.1.1', HOST)])
D2 = _facts(eth0=[('198.18.0.131', NET24)], eth1=[('198.18.1.131', NET24)])


def _converted(entry, forwarding='nat'):
    """An inventory entry as render() gets it: (ipvs_service options, keepalived fields), each
    converted by its spec as the filter converts them."""
    options, extra = keepalived.split_service(entry)
    options.setdefault('forwarding', forwarding)
    result = ArgumentSpecValidator(**model.ipvs_service_spec()).validate(options)
    assert not result.error_messages, result.error_messages
    fields = ArgumentSpecValidator(**keepalived.keepalived_service_spec()).validate(extra)
    assert not fields.error_messages, fields.error_messages
    return result.validated_parameters, fields.validated_parameters


def _blocks(content):
    """keepalived.conf's top-level blocks by their head line (render separates them by a blank line)."""
    return dict((block.split('\n', 1)[0], block) for block in content.strip().split('\n\n'))


def _virtual_server(entry, forwarding='nat'):
    """The lines of one service's virtual_server block, stripped."""
    content = keepalived.render([_converted(entry, forwarding)], forwarding, [])
    block = [b for head, b in _blocks(content).items() if head.startswith('virtual_server ')]
    assert len(block) == 1, content
    return [line.strip() for line in block[0].splitlines()]


# ---------------------------------------------------------------------------------------------
# the keepalived fields of a virtual service

def test_the_keepalived_spec_is_a_fresh_copy_the_validator_takes():
    spec = keepalived.keepalived_service_spec()
    assert set(spec['argument_spec']) == set(keepalived.KEEPALIVED_FIELDS)
    spec['argument_spec']['health_check']['options']['type']['choices'].append('ping')
    assert 'ping' not in keepalived.keepalived_service_spec()['argument_spec']['health_check']['options']['type']['choices']
    validated = ArgumentSpecValidator(**keepalived.keepalived_service_spec()).validate(
        {'health_check': {'type': 'http', 'port': '8080'}}).validated_parameters
    assert validated['health_check'] == {'type': 'http', 'port': 8080, 'path': '/', 'status': 200, 'command': None,
                                         'interval': 2, 'timeout': 2, 'retries': 1, 'retry_delay': 1}
    assert validated['quorum'] == 1 and validated['inhibit'] is False and validated['sorry_server'] is None


def test_split_service_separates_keepalived_fields_and_drops_the_name():
    entry = {'name': 'web', 'address': '198.18.0.144', 'port': 80, 'health_check': {'type': 'tcp'}, 'quorum': 2,
             'inhibit': True, 'sorry_server': {'address': '198.18.1.200'}, 'real_servers': []}
    options, extra = keepalived.split_service(entry)
    assert options == {'address': '198.18.0.144', 'port': 80, 'real_servers': []}
    assert extra == {'health_check': {'type': 'tcp'}, 'quorum': 2, 'inhibit': True, 'sorry_server': {'address': '198.18.1.200'}}
    assert entry['name'] == 'web' and entry['quorum'] == 2   # the entry itself is left as it was


def test_split_service_without_keepalived_fields_gives_none():
    assert keepalived.split_service({'fwmark': 7}) == ({'fwmark': 7}, {})


def _check(**fields):
    return dict(dict(type='tcp', port=None, path='/', status=200, command=None, interval=2, timeout=2, retries=1,
                     retry_delay=1), **fields)


def test_good_keepalived_fields_have_no_errors():
    assert keepalived.keepalived_errors({'health_check': _check(type='command', command='/bin/true'),
                                         'sorry_server': {'address': '2001:DB8::9', 'port': None}, 'quorum': 1},
                                        'vs[0]') == []
    assert keepalived.keepalived_errors({}, 'vs[0]') == []


@pytest.mark.parametrize('extra, error', [
    ({'health_check': _check(type='command')}, 'vs[0].health_check.command: is required with type command'),
    ({'health_check': _check(command='/bin/true')}, 'vs[0].health_check.command: only with type command (type is tcp)'),
    ({'health_check': _check(port=0)}, 'vs[0].health_check.port: 0 is not a port (1-65535)'),
    ({'health_check': _check(port=65536)}, 'vs[0].health_check.port: 65536 is not a port (1-65535)'),
    ({'health_check': _check(interval=0)}, 'vs[0].health_check.interval: must be 1 second or more, got 0'),
    ({'health_check': _check(timeout=0)}, 'vs[0].health_check.timeout: must be 1 second or more, got 0'),
    ({'health_check': _check(retries=-1)}, 'vs[0].health_check.retries: must be 0 or more, got -1'),
    ({'health_check': _check(retry_delay=-1)}, 'vs[0].health_check.retry_delay: must be 0 or more, got -1'),
    ({'health_check': _check(type='http', path='health')}, "vs[0].health_check.path: must start with /, got 'health'"),
    ({'health_check': _check(type='https', status=99)}, 'vs[0].health_check.status: 99 is not an HTTP status'),
    ({'sorry_server': {'address': 'sorry.example', 'port': 80}},
     'vs[0].sorry_server.address: sorry.example is not an IPv4 or IPv6 address'),
    ({'quorum': 0}, 'vs[0].quorum: must be 1 or more, got 0'),
])
def test_each_keepalived_error_names_its_field(extra, error):
    assert keepalived.keepalived_errors(extra, 'vs[0]') == [error]


def test_a_tcp_check_ignores_the_http_path():
    assert keepalived.keepalived_errors({'health_check': _check(path='health')}, 'vs[0]') == []


# ---------------------------------------------------------------------------------------------
# VRRP

def test_the_interface_is_the_one_whose_network_holds_the_address():
    assert keepalived.interface_for(D2, '198.18.0.144') == ('eth0', '198.18.0.131')
    assert keepalived.interface_for(D2, '198.18.1.1') == ('eth1', '198.18.1.131')
    assert keepalived.interface_for(D2, '198.18.7.1') == (None, None)
    assert keepalived.interface_for({}, '198.18.0.144') == (None, None)


def test_an_address_held_as_a_host_route_is_not_the_directors_own():
    # the VIP as eth0's first address (/32): its network holds nothing but itself
    facts = _facts(eth0=[('198.18.0.144', HOST), ('198.18.0.130', NET24)])
    assert keepalived.interface_for(facts, '198.18.0.144') == ('eth0', '198.18.0.130')


def test_the_floating_addresses_are_not_the_directors_own():
    # the gateway held with its network's prefix, before the director's own address
    facts = _facts(eth1=[('198.18.1.1', NET24), ('198.18.1.130', NET24)])
    assert keepalived.interface_for(facts, '198.18.1.1') == ('eth1', '198.18.1.1')
    assert keepalived.interface_for(facts, '198.18.1.1', floating={'198.18.1.1'}) == ('eth1', '198.18.1.130')


def test_loopback_and_link_local_addresses_are_not_used():
    facts = _facts(eth0=[('fe80::1', '64'), ('2001:db8::130', '64')])
    facts['lo']['ipv6'] = [{'address': '2001:db8::5', 'prefix': '64'}]
    assert keepalived.interface_for(facts, '2001:DB8::10') == ('eth0', '2001:db8::130')
    assert keepalived.interface_for(_facts(eth0=[('fe80::1', '64')]), 'fe80::10') == (None, None)


def test_an_address_of_the_other_family_is_not_on_the_network():
    facts = _facts(eth0=[('198.18.0.130', NET24)])
    assert keepalived.interface_for(facts, '2001:db8::10') == (None, None)


def test_interface_names_with_dashes_are_found_in_the_facts():
    facts = {'interfaces': ['br-lan'], 'br_lan': {'ipv4': {'address': '198.18.0.130', 'netmask': NET24}}}
    assert keepalived.interface_for(facts, '198.18.0.144') == ('br-lan', '198.18.0.130')


def test_nat_directors_run_a_vip_and_a_gateway_instance_in_a_sync_group():
    instances, group, errors = keepalived.vrrp_instances(['198.18.0.144'], D1, 51, 150, peers={'d2': D2},
                                                         gateway='198.18.1.1')
    assert errors == [] and group == 'lvs_group'
    assert instances == [
        dict(name='lvs_vip', interface='eth0', router_id=51, priority=150, advert_interval=1, nopreempt=False,
             source='198.18.0.130', peers=['198.18.0.131'], addresses=['198.18.0.144/32 dev eth0']),
        dict(name='lvs_gateway', interface='eth1', router_id=52, priority=150, advert_interval=1, nopreempt=False,
             source='198.18.1.130', peers=['198.18.1.131'], addresses=['198.18.1.1/32 dev eth1']),
    ]


def test_the_peer_finds_the_director_holding_the_floating_addresses():
    # d2's view: its peer d1 holds the VIP and the gateway now; d1's own addresses are the peers
    instances, _group, errors = keepalived.vrrp_instances(['198.18.0.144'], D2, 51, 140, peers={'d1': D1},
                                                          gateway='198.18.1.1')
    assert errors == []
    assert [(i['source'], i['peers']) for i in instances] == [('198.18.0.131', ['198.18.0.130']),
                                                              ('198.18.1.131', ['198.18.1.130'])]


def test_direct_routing_runs_one_instance_without_sync_group():
    instances, group, errors = keepalived.vrrp_instances(['198.18.0.144', '198.18.0.145'], D2, 7, 100,
                                                         advert_interval=2, nopreempt=True, name='web')
    assert errors == [] and group == ''
    assert instances == [dict(name='web_vip', interface='eth0', router_id=7, priority=100, advert_interval=2,
                              nopreempt=True, source='198.18.0.131', peers=[],
                              addresses=['198.18.0.144/32 dev eth0', '198.18.0.145/32 dev eth0'])]


def test_ipv6_vips_are_held_as_128():
    facts = _facts(eth0=[('2001:db8::130', '64')])
    instances, _group, errors = keepalived.vrrp_instances(['2001:db8::10'], facts, 51, 100, peers=['2001:db8::131'])
    assert errors == []
    assert instances[0]['addresses'] == ['2001:db8::10/128 dev eth0']
    assert instances[0]['source'] == '2001:db8::130' and instances[0]['peers'] == ['2001:db8::131']


def test_the_vip_interface_given_wins_and_its_own_address_is_the_source():
    facts = _facts(eth0=[('198.18.0.130', NET24)], eth2=[('198.18.0.144', HOST), ('203.0.113.5', NET24)])
    instances, _group, errors = keepalived.vrrp_instances(['198.18.0.144'], facts, 51, 100, vip_interface='eth2')
    assert errors == []
    assert instances[0]['interface'] == 'eth2' and instances[0]['source'] == '203.0.113.5'
    assert instances[0]['addresses'] == ['198.18.0.144/32 dev eth2']


def test_a_vip_on_no_network_of_the_director_names_director_vip_interface():
    instances, _group, errors = keepalived.vrrp_instances(['198.18.7.1'], D2, 51, 100)
    assert instances == []
    assert errors == ['director_vip_interface: no interface of this director is on the network of 198.18.7.1'
                      ' (give director_vip_interface)']


def test_a_vip_interface_without_address_names_director_vip_interface():
    _instances, _group, errors = keepalived.vrrp_instances(['198.18.0.144'], D2, 51, 100, vip_interface='eth9')
    assert len(errors) == 1 and errors[0].startswith('director_vip_interface: ')


def test_a_gateway_on_no_network_of_the_director_names_director_internal_address():
    instances, group, errors = keepalived.vrrp_instances(['198.18.0.144'], D2, 51, 100, gateway='198.18.9.1')
    assert [i['name'] for i in instances] == ['lvs_vip'] and group == ''
    assert errors == ['director_internal_address: no interface of this director is on the network of 198.18.9.1'
                      ' (give an address in its network)']


def test_a_gateway_alone_is_named_director_internal_address():
    # NAT with firewall-mark services only: no VIP instance, the gateway's is the first
    instances, _group, errors = keepalived.vrrp_instances([], D2, 51, 100, gateway='198.18.9.1')
    assert instances == []
    assert errors == ['director_internal_address: no interface of this director is on the network of 198.18.9.1'
                      ' (give an address in its network)']
    instances, group, errors = keepalived.vrrp_instances([], D2, 51, 100, gateway='198.18.1.1')
    assert errors == [] and group == ''
    assert [(i['name'], i['router_id'], i['interface']) for i in instances] == [('lvs_gateway', 51, 'eth1')]


def test_a_peer_without_facts_on_the_network_names_director_vrrp_peers():
    _instances, _group, errors = keepalived.vrrp_instances(['198.18.0.144'], D1, 51, 100,
                                                           peers={'d2': D2, 'd3': {}, 'd4': None})
    assert errors == [
        "director_vrrp_peers: no address of d3 on the network of 198.18.0.130 (is it in the play, with facts?"
        " else list the peers' addresses)",
        "director_vrrp_peers: no address of d4 on the network of 198.18.0.130 (is it in the play, with facts?"
        " else list the peers' addresses)"]


def test_a_list_of_peers_serves_the_vip_network_only():
    instances, _group, errors = keepalived.vrrp_instances(['198.18.0.144'], D1, 51, 100, peers=['198.18.0.131'])
    assert errors == [] and instances[0]['peers'] == ['198.18.0.131']
    instances, _group, errors = keepalived.vrrp_instances(['198.18.0.144'], D1, 51, 100, peers=['198.18.0.131'],
                                                          gateway='198.18.1.1')
    assert [i['peers'] for i in instances] == [['198.18.0.131'], []]
    assert len(errors) == 1 and errors[0].startswith('director_vrrp_peers: a list of addresses serves one network')


@pytest.mark.parametrize('router_id, priority, gateway, error', [
    (0, 100, '', 'director_vrrp_router_id: 0 is not a VRRP router id'),
    (256, 100, '', 'director_vrrp_router_id: 256 is not a VRRP router id'),
    (255, 100, '198.18.1.1', 'director_vrrp_router_id: 255 is not a VRRP router id'),   # NAT's gateway takes 256
    (51, 0, '', 'director_vrrp_priority: 0 is not a VRRP priority (1-254)'),
    (51, 255, '', 'director_vrrp_priority: 255 is not a VRRP priority (1-254)'),
])
def test_router_id_and_priority_out_of_range_are_named(router_id, priority, gateway, error):
    errors = keepalived.vrrp_instances(['198.18.0.144'], D1, router_id, priority, gateway=gateway)[2]
    assert len(errors) == 1 and errors[0].startswith(error), errors


@pytest.mark.parametrize('router_id, priority, gateway', [(1, 1, ''), (255, 254, ''), (254, 254, '198.18.1.1')])
def test_router_id_and_priority_at_their_limits_are_accepted(router_id, priority, gateway):
    assert keepalived.vrrp_instances(['198.18.0.144'], D1, router_id, priority, gateway=gateway)[2] == []


# ---------------------------------------------------------------------------------------------
# keepalived.conf

NAT_WEB = {'name': 'web', 'address': '198.18.0.144', 'port': 80, 'health_check': {'type': 'tcp'},
           'real_servers': [{'address': '198.18.1.132', 'port': 8080}, {'address': '198.18.1.133', 'port': 8080, 'weight': 2}]}

NAT_D1_CONF = """\
# Managed by Ansible (lvs.cluster.director): changes made here are overwritten.

global_defs {
    router_id d1
    enable_script_security
    script_user root
    lvs_sync_daemon eth0 lvs_vip id 51
    lvs_timeouts tcp 900 udp 300
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
    virtual_router_id 51
    priority 150
    advert_int 1
    unicast_src_ip 198.18.0.130
    unicast_peer {
        198.18.0.131
    }
    virtual_ipaddress {
        198.18.0.144/32 dev eth0
    }
}

vrrp_instance lvs_gateway {
    state BACKUP
    interface eth1
    virtual_router_id 52
    priority 150
    advert_int 1
    unicast_src_ip 198.18.1.130
    unicast_peer {
        198.18.1.131
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
        TCP_CHECK {
            connect_port 8080
            connect_timeout 2
            retry 1
            delay_before_retry 1
        }
    }
    real_server 198.18.1.133 8080 {
        weight 2
        TCP_CHECK {
            connect_port 8080
            connect_timeout 2
            retry 1
            delay_before_retry 1
        }
    }
}
"""


def test_the_keepalived_conf_of_a_nat_director():
    instances, group, errors = keepalived.vrrp_instances(['198.18.0.144'], D1, 51, 150, peers={'d2': D2},
                                                         gateway='198.18.1.1')
    assert errors == []
    content = keepalived.render([_converted(NAT_WEB)], 'nat', instances, sync_group=group, router_name='d1',
                                sync_daemon=dict(interface='eth0', instance='lvs_vip', id=51),
                                timeouts={'tcp': 900, 'tcpfin': 0, 'udp': 300})
    assert content == NAT_D1_CONF


def test_global_defs_without_sync_daemon_nor_timeouts():
    content = keepalived.render([], 'dr', [], timeouts={'tcp': 0, 'tcpfin': 0, 'udp': 0})
    assert _blocks(content)['global_defs {'].splitlines() == [
        'global_defs {', '    router_id lvs', '    enable_script_security', '    script_user root', '}']
    assert 'vrrp_' not in content and 'virtual_server' not in content


def test_timeouts_are_written_in_keepalived_order():
    content = keepalived.render([], 'dr', [], timeouts={'udp': 60, 'tcpfin': 30, 'tcp': 0})
    assert '    lvs_timeouts tcpfin 30 udp 60\n' in content


def test_timeouts_given_as_text_are_read_as_numbers():
    content = keepalived.render([], 'dr', [], timeouts={'tcp': '900', 'tcpfin': '0', 'udp': None})
    assert '    lvs_timeouts tcp 900\n' in content


def test_nopreempt_is_written_only_when_set():
    instances = keepalived.vrrp_instances(['198.18.0.144'], D2, 51, 100)[0]
    assert 'nopreempt' not in keepalived.render([], 'dr', instances)
    instances = keepalived.vrrp_instances(['198.18.0.144'], D2, 51, 100, nopreempt=True, advert_interval=3)[0]
    block = _blocks(keepalived.render([], 'dr', instances))['vrrp_instance lvs_vip {']
    assert '    advert_int 3\n    nopreempt\n' in block


def test_an_instance_without_peers_uses_multicast():
    instances = keepalived.vrrp_instances(['198.18.0.144'], D2, 51, 100)[0]
    content = keepalived.render([], 'dr', instances)
    assert 'unicast_src_ip' not in content and 'unicast_peer' not in content
    assert 'vrrp_sync_group' not in content


def test_an_address_service_with_every_option():
    lines = _virtual_server({
        'address': '198.18.0.145', 'port': 53, 'protocol': 'udp', 'scheduler': 'sh', 'scheduler_flags': ['sh-port', 'sh-fallback'],
        'persistent': 300, 'persistent_netmask': '255.255.255.0', 'one_packet': True, 'forwarding': 'dr', 'quorum': 2,
        'sorry_server': {'address': '198.18.1.200'}, 'inhibit': True,
        'real_servers': [{'address': '198.18.1.132', 'upper_threshold': 100, 'lower_threshold': 50},
                         {'address': '198.18.1.133', 'forwarding': 'tunnel', 'weight': 0}]})
    assert lines == [
        'virtual_server 198.18.0.145 53 {',
        'delay_loop 2',
        'lb_algo sh',
        'sh-port',
        'sh-fallback',
        'lb_kind DR',
        'protocol UDP',
        'persistence_timeout 300',
        'persistence_granularity 255.255.255.0',
        'ops',
        'quorum 2',
        'sorry_server 198.18.1.200 53',
        'real_server 198.18.1.132 53 {',
        'weight 1',
        'inhibit_on_failure',
        'uthreshold 100',
        'lthreshold 50',
        '}',
        'real_server 198.18.1.133 53 {',
        'weight 0',
        'lvs_method TUN',
        'inhibit_on_failure',
        '}',
        '}']


@pytest.mark.parametrize('forwarding, kind', [('nat', 'NAT'), ('dr', 'DR'), ('tunnel', 'TUN')])
def test_lb_kind_is_the_services_forwarding(forwarding, kind):
    lines = _virtual_server({'address': '198.18.0.144', 'port': 80, 'real_servers': [{'address': '198.18.1.132'}]},
                            forwarding)
    assert 'lb_kind %s' % kind in lines
    assert not any(line.startswith('lvs_method') for line in lines)


def test_lvs_method_only_where_the_real_server_differs_from_its_service():
    lines = _virtual_server({'address': '198.18.0.144', 'port': 80, 'forwarding': 'nat',
                             'real_servers': [{'address': '198.18.1.132', 'forwarding': 'nat'},
                                              {'address': '198.18.1.133', 'forwarding': 'dr'}]}, 'tunnel')
    assert 'lb_kind NAT' in lines
    assert [line for line in lines if line.startswith('lvs_method')] == ['lvs_method DR']


def test_a_persistent_service_without_netmask_and_with_an_engine():
    lines = _virtual_server({'address': '198.18.0.144', 'port': 5060, 'protocol': 'udp', 'persistent': 60,
                             'persistence_engine': 'sip'}, 'dr')
    assert lines[lines.index('persistence_timeout 60') + 1] == 'persistence_engine sip'
    assert not any(line.startswith('persistence_granularity') or line == 'ops' for line in lines)


def test_a_service_without_persistence_has_no_persistence_lines():
    lines = _virtual_server({'address': '198.18.0.144', 'port': 80}, 'dr')
    assert lines == ['virtual_server 198.18.0.144 80 {', 'delay_loop 2', 'lb_algo wlc', 'lb_kind DR', 'protocol TCP',
                     'quorum 1', '}']


def test_a_firewall_mark_service_has_no_protocol_and_names_its_family():
    v4 = _virtual_server({'fwmark': 7, 'scheduler': 'rr', 'sorry_server': {'address': '198.18.1.200', 'port': 8080},
                          'real_servers': [{'address': '198.18.1.132'}]}, 'dr')
    assert v4[0] == 'virtual_server fwmark 7 {'
    assert not any(line.startswith('protocol') or line.startswith('ip_family') for line in v4)
    assert 'sorry_server 198.18.1.200 8080' in v4 and 'real_server 198.18.1.132 0 {' in v4
    v6 = _virtual_server({'fwmark': 8, 'family': 'ipv6', 'real_servers': [{'address': '2001:DB8::2'}]}, 'dr')
    assert v6[0] == 'virtual_server fwmark 8 {' and 'ip_family inet6' in v6
    assert 'real_server 2001:db8::2 0 {' in v6


def test_addresses_are_written_as_the_kernel_prints_them():
    lines = _virtual_server({'address': '2001:DB8:0::10', 'port': 443, 'sorry_server': {'address': '2001:DB8::99'},
                             'real_servers': [{'address': '2001:DB8::2'}]}, 'dr')
    assert lines[0] == 'virtual_server 2001:db8::10 443 {'
    assert 'sorry_server 2001:db8::99 443' in lines and 'real_server 2001:db8::2 443 {' in lines


def test_the_real_servers_port_is_its_own_else_the_services():
    lines = _virtual_server({'address': '198.18.0.144', 'port': 80, 'health_check': {'type': 'tcp'},
                             'real_servers': [{'address': '198.18.1.132'}, {'address': '198.18.1.133', 'port': 8080}]}, 'nat')
    assert 'real_server 198.18.1.132 80 {' in lines and 'real_server 198.18.1.133 8080 {' in lines
    assert [line for line in lines if line.startswith('connect_port')] == ['connect_port 80', 'connect_port 8080']


def test_a_health_check_port_wins_over_the_real_servers():
    lines = _virtual_server({'address': '198.18.0.144', 'port': 80, 'health_check': {'type': 'tcp', 'port': 9000},
                             'real_servers': [{'address': '198.18.1.132', 'port': 8080}]}, 'nat')
    assert 'connect_port 9000' in lines


def test_an_http_check():
    lines = _virtual_server({'address': '198.18.0.144', 'port': 80, 'health_check': {
        'type': 'http', 'path': '/health', 'status': 204, 'interval': 5, 'timeout': 3, 'retries': 2, 'retry_delay': 4},
        'real_servers': [{'address': '198.18.1.132'}]}, 'dr')
    assert lines[1] == 'delay_loop 5'
    start = lines.index('HTTP_GET {')
    assert lines[start:start + 10] == ['HTTP_GET {', 'url {', 'path /health', 'status_code 204', '}', 'connect_port 80',
                                       'connect_timeout 3', 'retry 2', 'delay_before_retry 4', '}']


def test_an_https_check_uses_ssl_get_with_the_default_path_and_status():
    lines = _virtual_server({'address': '198.18.0.144', 'port': 443, 'health_check': {'type': 'https'},
                             'real_servers': [{'address': '198.18.1.132'}]}, 'dr')
    start = lines.index('SSL_GET {')
    assert lines[start:start + 6] == ['SSL_GET {', 'url {', 'path /', 'status_code 200', '}', 'connect_port 443']


def test_a_command_check_runs_its_command_without_connect_lines():
    lines = _virtual_server({'address': '198.18.0.144', 'port': 80, 'health_check': {
        'type': 'command', 'command': '/usr/local/bin/check "web" 80', 'timeout': 5, 'retries': 0},
        'real_servers': [{'address': '198.18.1.132'}]}, 'dr')
    start = lines.index('MISC_CHECK {')
    assert lines[start:start + 6] == ['MISC_CHECK {', 'misc_path "/usr/local/bin/check \\"web\\" 80"', 'misc_timeout 5',
                                      'retry 0', 'delay_before_retry 1', '}']
    assert not any(line.startswith('connect_') for line in lines)


def test_without_health_check_there_is_no_checker():
    lines = _virtual_server({'address': '198.18.0.144', 'port': 80, 'real_servers': [{'address': '198.18.1.132'}]}, 'dr')
    assert not any(line.endswith('_CHECK {') or line.endswith('_GET {') for line in lines)
    assert 'inhibit_on_failure' not in lines


def test_absent_services_and_real_servers_are_not_rendered():
    real_servers = [{'address': '198.18.1.132'}, {'address': '198.18.1.133', 'state': 'absent'}]
    services = [_converted({'address': '198.18.0.144', 'port': 80, 'real_servers': real_servers}, 'dr'),
                _converted({'address': '198.18.0.145', 'port': 80, 'state': 'absent',
                            'real_servers': [{'address': '198.18.1.134'}]}, 'dr'),
                _converted({'fwmark': 7, 'state': 'absent'}, 'dr')]
    content = keepalived.render(services, 'dr', [])
    assert [head for head in _blocks(content) if head.startswith('virtual_server')] == ['virtual_server 198.18.0.144 80 {']
    assert '198.18.1.132' in content and '198.18.1.133' not in content and '198.18.1.134' not in content


def test_services_are_rendered_in_their_order():
    services = [_converted({'address': '198.18.0.145', 'port': 80}, 'dr'), _converted({'fwmark': 7}, 'dr'),
                _converted({'address': '198.18.0.144', 'port': 80}, 'dr')]
    heads = [head for head in _blocks(keepalived.render(services, 'dr', [])) if head.startswith('virtual_server')]
    assert heads == ['virtual_server 198.18.0.145 80 {', 'virtual_server fwmark 7 {', 'virtual_server 198.18.0.144 80 {']


# ---------------------------------------------------------------------------------------------
# keepalived.service's drop-in: what is released whenever keepalived stops, and its restart

def test_the_release_of_a_nat_director_drops_its_addresses_services_and_sync_daemon():
    instances = keepalived.vrrp_instances(['198.18.0.144'], D1, 51, 150, peers={'d2': D2}, gateway='198.18.1.1')[0]
    services = [_converted({'address': '198.18.0.144', 'port': 80, 'real_servers': [{'address': '198.18.1.132'}]}),
                _converted({'address': '198.18.0.144', 'port': 53, 'protocol': 'udp'}),
                _converted({'address': '198.18.0.145', 'port': 80, 'state': 'absent'})]
    assert keepalived.release_commands(instances, services, sync_daemon=True) == [
        ['ip', 'address', 'del', '198.18.0.144/32', 'dev', 'eth0'],
        ['ip', 'address', 'del', '198.18.1.1/32', 'dev', 'eth1'],
        ['ipvsadm', '-D', '-t', '198.18.0.144:80'],
        ['ipvsadm', '-D', '-u', '198.18.0.144:53'],
        ['ipvsadm', '--stop-daemon', 'master'],
        ['ipvsadm', '--stop-daemon', 'backup'],
    ]


def test_the_release_names_ipv6_and_firewall_mark_services_as_ipvsadm_does():
    facts = _facts(eth0=[('2001:2::130', '64')])
    instances = keepalived.vrrp_instances(['2001:2::10'], facts, 51, 100)[0]
    services = [_converted({'address': '2001:2:0::10', 'port': 443}, 'dr'), _converted({'fwmark': 7, 'family': 'ipv6'}, 'dr'),
                _converted({'fwmark': 8}, 'dr')]
    assert keepalived.release_commands(instances, services) == [
        ['ip', 'address', 'del', '2001:2::10/128', 'dev', 'eth0'],
        ['ipvsadm', '-D', '-t', '[2001:2::10]:443'],
        ['ipvsadm', '-D', '-f', '7', '-6'],
        ['ipvsadm', '-D', '-f', '8'],
    ]


def test_without_instances_nor_services_nothing_is_released():
    assert keepalived.release_commands([], []) == []


def test_the_drop_in_restarts_keepalived_and_releases_on_every_stop():
    release = [['ip', 'address', 'del', '198.18.0.144/32', 'dev', 'eth0'], ['ipvsadm', '-D', '-t', '198.18.0.144:80'],
               ['ipvsadm', '--stop-daemon', 'master']]
    assert keepalived.unit_dropin(release) == """\
# Managed by Ansible (lvs.cluster.director): changes made here are overwritten.
# keepalived that dies (SIGKILL, OOM, a crash) cleans nothing up: whenever it stops, systemd drops
# what it held (floating addresses, virtual services, sync daemon), then starts it again (as
# BACKUP: VRRP decides when it holds the addresses again). An operator's stop is not undone.
[Unit]
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
KillMode=mixed
Restart=always
RestartSec=1
ExecStopPost=-ip address del 198.18.0.144/32 dev eth0
ExecStopPost=-ipvsadm -D -t 198.18.0.144:80
ExecStopPost=-ipvsadm --stop-daemon master
"""


def test_the_drop_in_takes_its_limits_and_quotes_what_systemd_would_read_otherwise():
    dropin = keepalived.unit_dropin([['ip', 'address', 'del', '198.18.0.144/32', 'dev', 'a b'], ['x', '50%', '$HOME', '"q"', '']],
                                    restart_sec=3, start_limit_burst=4, start_limit_interval_sec=60)
    assert dropin.splitlines()[5:] == [
        'StartLimitIntervalSec=60', 'StartLimitBurst=4', '', '[Service]', 'KillMode=mixed', 'Restart=always', 'RestartSec=3',
        'ExecStopPost=-ip address del 198.18.0.144/32 dev "a b"',
        'ExecStopPost=-x 50%% $$HOME "\\"q\\"" ""']
