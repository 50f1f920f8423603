"""The cluster model shared by the module and the roles' filters (module_utils/model.py)."""

from __future__ import annotations

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.lvs.cluster.plugins.module_utils import ipvs, model
from ansible_collections.lvs.cluster.plugins.modules import ipvs_service

WEB = {'name': 'web', 'address': '198.18.0.144', 'port': 80,
       'real_servers': [{'address': '198.18.1.132'}, {'address': '198.18.1.133'}]}
RS1_FACTS = {'interfaces': ['lo', 'eth0', 'tunl0'], 'eth0': {'ipv4': {'address': '198.18.1.132'}},
             'lo': {'ipv4': {'address': '127.0.0.1'}}, 'tunl0': {}}


@pytest.mark.parametrize('text, address', [('2001:DB8::2', '2001:db8::2'), ('2001:db8:0:0::2', '2001:db8::2'),
                                           (' 198.18.1.132 ', '198.18.1.132')])
def test_addresses_are_normalised_as_the_kernel_prints_them(text, address):
    assert model.normalize_address(text) == address


@pytest.mark.parametrize('text', ['198.18.1.300', 'rs1', '', '198.18.1.0/24'])
def test_a_non_address_is_refused(text):
    with pytest.raises(ValueError):
        model.normalize_address(text)


def test_forwarding_is_the_real_servers_own_else_its_services_else_the_default():
    assert model.effective_forwarding({'forwarding': 'tunnel'}, {'forwarding': 'dr'}, 'nat') == 'tunnel'
    assert model.effective_forwarding({}, {'forwarding': 'dr'}, 'nat') == 'dr'
    assert model.effective_forwarding({}, {}, 'nat') == 'nat'
    assert model.effective_forwarding({}, {}) == 'dr'


def test_the_module_uses_the_model_forwarding():
    service, dests = ipvs.desired_service(dict(WEB, forwarding='nat', real_servers=[
        {'address': '198.18.1.132', 'forwarding': 'dr', 'port': 80}, {'address': '198.18.1.133'}]))
    assert [dest.forwarding for _state, dest, _field in dests] == ['dr', 'nat']


def test_service_keys_of_two_spellings_are_the_same():
    assert model.service_key({'address': '2001:DB8::1', 'port': '80'}) == model.service_key(
        {'address': '2001:db8:0::1', 'port': 80, 'protocol': 'tcp'}) == ('addr', 'ipv6', 'tcp', '2001:db8::1', 80)
    assert model.service_key({'fwmark': 7}) == ('fwmark', 'ipv4', 7)
    assert model.key_options(('fwmark', 'ipv6', 7)) == {'fwmark': 7, 'family': 'ipv6'}


def test_the_module_is_built_from_the_one_spec():
    spec = model.ipvs_service_spec()
    assert set(spec) == {'argument_spec', 'mutually_exclusive', 'required_one_of', 'required_together'}
    ArgumentSpecValidator(**spec)   # takes it as it is
    captured = {}

    class Capture(Exception):
        pass

    def fake_module(**kwargs):
        captured.update(kwargs)
        raise Capture()

    original = ipvs_service.AnsibleModule
    ipvs_service.AnsibleModule = fake_module
    try:
        with pytest.raises(Capture):
            ipvs_service.build_module()
    finally:
        ipvs_service.AnsibleModule = original
    assert captured == dict(spec, supports_check_mode=True)


def test_director_forwardings_vips_and_modules():
    services = [dict(WEB, address='2001:DB8::10', scheduler='rr', real_servers=[{'address': '2001:db8::2', 'forwarding': 'dr'}]),
                dict(WEB, real_servers=[{'address': '198.18.1.132', 'state': 'absent', 'forwarding': 'tunnel'},
                                        {'address': '198.18.1.133'}]),
                dict(WEB, address='198.18.0.145', state='absent', scheduler='sh'),
                {'fwmark': 7, 'scheduler': 'lc', 'forwarding': 'tunnel', 'real_servers': [{'address': '198.18.1.132'}]}]
    config = model.director_config(services, 'nat', facts={'interfaces': ['lo', 'eth0'], 'eth0': {'ipv4': {}}},
                                   internal_network='198.18.1.0/24')
    assert config['forwardings'] == ['dr', 'nat', 'tunnel']
    assert config['nat'] is True
    assert config['vips'] == ['2001:db8::10', '198.18.0.144']
    assert config['kernel_modules'] == ['ip_vs', 'ip_vs_rr', 'ip_vs_wlc', 'ip_vs_lc']
    assert config['masquerade_networks'] == ['198.18.1.0/24']
    assert config['sysctls'] == [
        {'name': 'net.ipv4.ip_forward', 'value': '1'}, {'name': 'net.ipv6.conf.all.forwarding', 'value': '1'},
        {'name': 'net.ipv4.conf.all.send_redirects', 'value': '0'},
        {'name': 'net.ipv4.conf.default.send_redirects', 'value': '0'},
        {'name': 'net.ipv4.conf.eth0.send_redirects', 'value': '0'}]
    assert config['errors'] == []


def test_director_without_nat_neither_forwards_nor_masquerades():
    config = model.director_config([dict(WEB, forwarding='dr')], 'nat', sysctl_interfaces=['eth0.100'],
                                   internal_network='198.18.1.0/24')
    assert config['nat'] is False and config['masquerade_networks'] == []
    assert [s['name'] for s in config['sysctls']] == ['net.ipv4.conf.all.send_redirects', 'net.ipv4.conf.default.send_redirects',
                                                      'net.ipv4.conf.eth0/100.send_redirects']


@pytest.mark.parametrize('kwargs, error', [
    (dict(internal_network=''), 'director_internal_network (lvs_internal_network): a real server uses NAT'),
    (dict(internal_network='198.18.1.0'), 'director_internal_network (lvs_internal_network): 198.18.1.0 is not a network'),
    (dict(internal_network='198.18.1.0/24', vip_interface='eth9'), 'director_vip_interface: this host has no interface eth9'),
])
def test_director_settings_errors_name_the_variable(kwargs, error):
    errors = model.director_config([WEB], 'nat', facts={'interfaces': ['eth0']}, **kwargs)['errors']
    assert len(errors) == 1 and errors[0].startswith(error)


def test_a_real_server_written_in_capitals_is_this_host():
    services = [{'name': 'v6', 'address': '2001:DB8::10', 'port': 80, 'forwarding': 'dr',
                 'real_servers': [{'address': '2001:DB8::2'}, {'address': '2001:db8::3'}]}]
    config = model.realserver_config(services, ['198.18.1.132', '2001:db8::2'], 'nat')
    assert config['entries'] == [{'vip': '2001:db8::10', 'address': '2001:db8::2', 'forwarding': 'dr', 'service': 'v6'}]
    assert config['dr_vips'] == ['2001:db8::10']
    assert config['arp'] is False   # IPv6 VIPs only: no ARP settings


def test_a_real_server_of_no_service_configures_nothing():
    config = model.realserver_config([WEB], ['198.18.1.140'], 'dr', facts=RS1_FACTS)
    assert config['entries'] == [] and config['sysctls'] == [] and config['dr_vips'] == [] and not config['nat']


def test_each_real_server_gets_its_own_forwarding():
    services = [dict(WEB, real_servers=[{'address': '198.18.1.132', 'forwarding': 'tunnel'}]),
                dict(WEB, address='198.18.0.145', forwarding='dr', real_servers=[{'address': '198.18.1.132'}]),
                dict(WEB, address='198.18.0.146', real_servers=[{'address': '198.18.1.132'}]),
                dict(WEB, address='198.18.0.147', state='absent', real_servers=[{'address': '198.18.1.132'}])]
    config = model.realserver_config(services, ['198.18.1.132'], 'nat', facts=RS1_FACTS,
                                     extra_vips=[{'address': '198.18.0.9', 'forwarding': 'dr'}],
                                     director_internal_address='198.18.1.130')
    assert config['tunnel_vips'] == ['198.18.0.144']
    assert config['dr_vips'] == ['198.18.0.145', '198.18.0.9']
    assert config['nat'] is True
    assert config['kernel_modules'] == ['ipip']
    assert config['interfaces'] == ['eth0']
    assert {'name': 'net.ipv4.conf.eth0.arp_ignore', 'value': '1'} in config['sysctls']
    assert config['sysctls'][-1] == {'name': 'net.ipv4.conf.tunl0.rp_filter', 'value': '2'}
    assert config['errors'] == []


@pytest.mark.parametrize('services, kwargs, error', [
    ([dict(WEB, address='198.18.0.300')], {}, 'realserver_virtual_services[0].address: 198.18.0.300 is not an IPv4 or IPv6 address'),
    ([], {'extra_vips': [{'address': 'vip', 'forwarding': 'dr'}]}, 'realserver_extra_vips[0].address: vip is not'),
    ([dict(WEB, address='2001:db8::1', forwarding='tunnel', real_servers=[{'address': '198.18.1.132'}])], {},
     'web: VIP 2001:db8::1 with tunnel forwarding'),
    ([dict(WEB, forwarding='nat')], {'director_internal_address': ''},
     'realserver_director_internal_address (lvs_director_internal_address): this host is a NAT real server of web'),
])
def test_realserver_errors_name_the_variable(services, kwargs, error):
    errors = model.realserver_config(services, ['198.18.1.132'], 'dr', **kwargs)['errors']
    assert len(errors) == 1 and errors[0].startswith(error), errors
