"""The roles' input check runs the module's own validation on the controller."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.lvs.cluster.plugins.module_utils import ipvs
from ansible_collections.lvs.cluster.plugins.filter.ipvs import FilterModule, ipvs_service_errors, ipvs_service_keys
from ansible_collections.lvs.cluster.plugins.modules import ipvs_service

WEB = {'name': 'web', 'address': '198.18.0.144', 'port': 80, 'scheduler': 'wlc', 'persistent': 3,
       'real_servers': [{'address': '198.18.1.132', 'port': 80}, {'address': '198.18.1.133', 'port': 80}]}


def test_good_services_have_no_errors():
    assert ipvs_service_errors([WEB, {'fwmark': 7, 'scheduler': 'sh', 'real_servers': [{'address': '198.18.1.132'}]}],
                               forwarding='nat') == []


def test_each_error_says_where_and_which_field():
    bad_port = dict(WEB, real_servers=[{'address': '198.18.1.132', 'port': 8080}])
    no_vip = {'port': 80}
    assert ipvs_service_errors([WEB, bad_port, no_vip], forwarding='dr', name='lvs_virtual_services') == [
        'lvs_virtual_services[1] (web).real_servers[0].port: port 8080 differs from the service port 80: only nat '
        'forwarding can map ports (dr always uses the service port)',
        'lvs_virtual_services[2].address: give address and port, or fwmark',
    ]


def test_the_service_forwarding_wins_over_the_default():
    dr = dict(WEB, forwarding='dr', real_servers=[{'address': '198.18.1.132', 'port': 8080}])
    assert len(ipvs_service_errors([dr], forwarding='nat')) == 1


def test_numbers_given_as_text_are_read_as_the_module_would():
    text = dict(WEB, port='80', real_servers=[{'address': '198.18.1.132', 'port': '80', 'weight': '2'}])
    assert ipvs_service_errors([text], forwarding='nat') == []


def test_text_the_module_converts_is_accepted():
    udp = {'protocol': 'udp', 'address': '198.18.0.144', 'port': '53', 'one_packet': 'false',
           'real_servers': [{'address': '198.18.1.132', 'weight': '2', 'state': 'present'}]}
    sh = {'address': '198.18.0.144', 'port': 80, 'scheduler': 'sh', 'scheduler_flags': 'sh-port',
          'persistent': '30', 'one_packet': 'no', 'real_servers': []}
    assert ipvs_service_errors([udp, sh], forwarding='dr') == []


def test_one_packet_given_as_text_true_is_still_only_for_udp():
    assert ipvs_service_errors([dict(WEB, one_packet='yes')], forwarding='nat') == [
        'virtual_services[0] (web).one_packet: one-packet scheduling is only for UDP services']


def test_a_wrong_type_names_the_option_and_where_it_is():
    bad = dict(WEB, real_servers=[{'address': '198.18.1.132'}, {'address': '198.18.1.133', 'weight': 'heavy'}])
    errors = ipvs_service_errors([WEB, bad], forwarding='nat', name='lvs_virtual_services')
    assert len(errors) == 1
    assert errors[0].startswith("lvs_virtual_services[1] (web).real_servers[1].weight: argument 'weight' is of type")


def test_a_bad_address_names_the_real_server():
    bad = dict(WEB, real_servers=[{'address': '198.18.1.132'}, {'address': '198.18.1.300'}])
    assert ipvs_service_errors([bad], forwarding='nat', name='lvs_virtual_services') == [
        "lvs_virtual_services[0] (web).real_servers[1].address: '198.18.1.300' is not an IPv4 or IPv6 address"]


def test_a_real_server_without_address_names_the_field():
    bad = dict(WEB, real_servers=[{'port': 80}])
    assert ipvs_service_errors([bad], forwarding='nat') == ['virtual_services[0] (web).real_servers[0].address: is required']


def test_an_unknown_choice_names_the_option():
    errors = ipvs_service_errors([dict(WEB, scheduler_flags=['sh-prot'], scheduler='sh')], forwarding='nat')
    assert len(errors) == 1 and errors[0].startswith('virtual_services[0] (web).scheduler_flags: value of scheduler_flags must be one or more of')


# The filter and the module, given the same options, accept and refuse the same ones.
SAME_AS_MODULE = [
    dict(address='198.18.0.144', port='80'),
    dict(address='198.18.0.144', port=80, one_packet='false'),
    dict(address='198.18.0.144', port=80, protocol='udp', one_packet='true'),
    dict(address='198.18.0.144', port=80, one_packet='true'),
    dict(address='198.18.0.144', port=80, one_packet='maybe'),
    dict(address='198.18.0.144', port=80, scheduler='sh', scheduler_flags='sh-port'),
    dict(address='198.18.0.144', port=80, scheduler='sh', scheduler_flags='sh-port,sh-fallback'),
    dict(address='198.18.0.144', port=80, scheduler='wlc', scheduler_flags='sh-port'),
    dict(address='198.18.0.144', port='eighty'),
    dict(address='198.18.0.144'),
    dict(fwmark='7', real_servers=[{'address': '198.18.1.132', 'weight': '3'}]),
    dict(fwmark=7, address='198.18.0.144', port=80),
    dict(address='2001:DB8::1', port=80, real_servers=[{'address': '2001:DB8::2', 'upper_threshold': '10',
                                                        'lower_threshold': '5'}]),
    dict(address='198.18.0.144', port=80, real_servers=[{'address': '198.18.1.132', 'weight': 'x'}]),
    dict(address='198.18.0.144', port=80, real_servers=[{'port': 80}]),
    dict(address='198.18.0.144', port=80, persistent='3', persistent_netmask='255.255.255.0'),
]


class _Stop(Exception):
    pass


def _module_accepts(options, monkeypatch):
    outcome = {}

    def fail_json(self, msg, **kwargs):
        outcome['failed'] = msg
        raise _Stop()

    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(ipvs_service, 'ensure_service', lambda module: None)
    with patch_module_args(dict(options)):
        try:
            ipvs_service.main()
        except _Stop:
            return False
    # what the module checks itself, after the argument spec, before it runs ipvsadm
    with patch_module_args(dict(options)):
        module = ipvs_service.build_module()
    try:
        ipvs.desired_service(module.params)
    except ipvs.ValidationError:
        return False
    return True


@pytest.mark.parametrize('options', SAME_AS_MODULE, ids=[str(o) for o in SAME_AS_MODULE])
def test_the_filter_accepts_what_the_module_accepts(options, monkeypatch):
    assert (ipvs_service_errors([options]) == []) == _module_accepts(options, monkeypatch)


def test_the_same_service_twice_is_an_error():
    assert ipvs_service_errors([WEB, dict(WEB, name='again')], forwarding='nat') == [
        'virtual_services[1] (again): the same virtual service as virtual_services[0] (web) (tcp 198.18.0.144:80)']


@pytest.mark.parametrize('services', [None, {'address': '198.18.0.144'}])
def test_not_a_list_is_refused(services):
    with pytest.raises(AnsibleFilterError):
        ipvs_service_errors(services)


def test_a_service_that_is_not_a_dict_is_named():
    assert ipvs_service_errors(['web']) == ['virtual_services[0]: must be a dictionary (a virtual service)']


def test_keys_name_present_services_as_the_kernel_prints_them():
    services = [WEB, {'protocol': 'udp', 'address': '2001:DB8:0::53', 'port': '53'},
                {'fwmark': 7, 'family': 'ipv6', 'scheduler': 'sh'},
                {'address': '198.18.0.145', 'port': 80, 'state': 'absent'}]
    assert ipvs_service_keys(services, forwarding='nat') == [
        {'protocol': 'tcp', 'address': '198.18.0.144', 'port': 80},
        {'protocol': 'udp', 'address': '2001:db8::53', 'port': 53},
        {'fwmark': 7, 'family': 'ipv6'},
    ]


def test_keys_of_a_bad_service_are_refused():
    with pytest.raises(AnsibleFilterError, match=r'virtual_services\[0\]\.port: port 0 is out of range'):
        ipvs_service_keys([{'address': '198.18.0.144', 'port': 0}])


def test_the_filters_are_registered():
    filters = FilterModule().filters()
    assert filters['ipvs_service_errors'] is ipvs_service_errors
    assert filters['ipvs_service_keys'] is ipvs_service_keys
    assert set(filters) == {'ipvs_service_errors', 'ipvs_service_keys', 'director_config', 'realserver_config',
                            'keepalived_config', 'ipvs_rules_without', 'drain_real_servers', 'drain_unknown',
                            'active_connections', 'ipvs_timeouts_differ'}


def test_an_unknown_option_is_named_where_it_is():
    bad = dict(WEB, wieght=1, real_servers=[{'address': '198.18.1.132'}, {'address': '198.18.1.133', 'wieght': 2}])
    errors = ipvs_service_errors([bad], forwarding='nat', name='lvs_virtual_services')
    assert [error.split(' (known')[0] for error in errors] == [
        'lvs_virtual_services[0] (web).wieght: unknown option',
        'lvs_virtual_services[0] (web).real_servers[1].wieght: unknown option']


def test_a_real_server_that_is_not_a_dict_is_named_by_its_index():
    assert ipvs_service_errors([dict(WEB, real_servers=[{'address': '198.18.1.132'}, '198.18.1.133'])], forwarding='nat') == [
        'virtual_services[0] (web).real_servers[1]: must be a dictionary with at least an address']
