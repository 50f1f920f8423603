"""The roles' input check runs the module's own validation on the controller."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.lvs.cluster.plugins.filter.ipvs import FilterModule, ipvs_service_errors, ipvs_service_keys

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
    with pytest.raises(AnsibleFilterError, match='virtual service 0: port: port 0 is out of range'):
        ipvs_service_keys([{'address': '198.18.0.144', 'port': 0}])


def test_the_filters_are_registered():
    filters = FilterModule().filters()
    assert filters['ipvs_service_errors'] is ipvs_service_errors
    assert filters['ipvs_service_keys'] is ipvs_service_keys
