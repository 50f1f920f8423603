"""Parsing, validation, planning and rendering of the IPVS table, over ipvsadm output captured on a real kernel."""

from __future__ import annotations

import pytest

from ansible_collections.lvs.cluster.plugins.module_utils import ipvs

from conftest import fixture_text

WEB = ('addr', 'ipv4', 'tcp', '198.18.0.144', 80)


def params(**overrides):
    base = dict(state='present', protocol='tcp', address='198.18.0.144', port=80, fwmark=None, family=None,
                scheduler='wlc', scheduler_flags=[], persistent=3, persistent_netmask=None,
                persistence_engine=None, one_packet=False, forwarding='nat',
                real_servers=[dict(address='198.18.1.132', port=80), dict(address='198.18.1.133', port=80)])
    base.update(overrides)
    return base


def desired(**overrides):
    return ipvs.desired_service(params(**overrides))


# --- parsing ------------------------------------------------------------------------------------

def test_parse_save_reads_every_kind_of_service():
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    assert set(table) == {
        WEB,
        ('addr', 'ipv4', 'tcp', '198.18.0.145', 80),
        ('addr', 'ipv4', 'tcp', '198.18.0.146', 80),
        ('addr', 'ipv4', 'udp', '198.18.0.144', 53),
        ('addr', 'ipv4', 'sctp', '198.18.0.144', 9999),
        ('addr', 'ipv6', 'tcp', '2001:db8::1', 443),
        ('fwmark', 'ipv4', 7),
        ('fwmark', 'ipv6', 8),
    }
    service, dests = table[WEB]
    assert (service.scheduler, service.persistent, service.persistent_netmask) == ('wlc', 3, None)
    assert dests[('198.18.1.133', 8080)].forwarding == 'nat'
    assert dests[('198.18.1.133', 8080)].weight == 2


def test_parse_save_reads_netmasks_flags_and_families():
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    assert table[('addr', 'ipv4', 'tcp', '198.18.0.145', 80)][0].persistent_netmask == '255.255.255.0'
    assert table[('addr', 'ipv6', 'tcp', '2001:db8::1', 443)][0].persistent_netmask == '64'
    assert table[('fwmark', 'ipv4', 7)][0].scheduler_flags == ('sh-fallback', 'sh-port')
    assert table[('fwmark', 'ipv6', 8)][0].scheduler_flags == ('mh-port',)
    v6 = table[('addr', 'ipv6', 'tcp', '2001:db8::1', 443)][1]
    assert v6[('198.18.1.132', 443)].forwarding == 'tunnel'
    assert v6[('2001:db8::2', 443)].forwarding == 'dr'
    assert table[('fwmark', 'ipv4', 7)][1][('198.18.1.132', 0)].port == 0


def test_parse_save_keeps_persistence_engine_and_one_packet():
    table = ipvs.parse_save(fixture_text('sn_thresholds.txt'))
    assert table[('addr', 'ipv4', 'tcp', '198.18.0.145', 80)][0].persistence_engine == 'sip'
    assert table[('addr', 'ipv4', 'udp', '198.18.0.144', 53)][0].one_packet is True


def test_render_reproduces_what_ipvsadm_saved():
    text = fixture_text('sn_mixed.txt')
    table = ipvs.parse_save(text)
    rendered = ''.join(ipvs.render_entry(*entry) for entry in table.values())
    # The default tunnel type is the only thing left out.
    assert sorted(rendered.split('\n')) == sorted(text.replace(' --tun-type ipip', '').split('\n'))


def test_thresholds_come_from_the_listing_because_save_leaves_them_out():
    table = ipvs.parse_save(fixture_text('sn_thresholds.txt'))
    assert table[WEB][1][('198.18.1.133', 8080)].upper_threshold == 0
    ipvs.apply_thresholds(table, ipvs.parse_listing(fixture_text('ln_thresholds.txt')))
    dests = table[WEB][1]
    assert (dests[('198.18.1.133', 8080)].upper_threshold, dests[('198.18.1.133', 8080)].lower_threshold) == (100, 10)
    assert (dests[('198.18.1.134', 8080)].upper_threshold, dests[('198.18.1.134', 8080)].lower_threshold) == (100, 0)


def test_parse_listing_reads_stats_for_services_and_real_servers():
    listing = ipvs.parse_listing(fixture_text('ln_stats_mixed.txt'))
    assert listing[WEB][0] == [0, 0, 0, 0, 0]
    assert listing[('fwmark', 'ipv6', 8)][0] == [0, 0, 0, 0, 0]
    assert listing[('addr', 'ipv6', 'tcp', '2001:db8::1', 443)][1][('2001:db8::2', 443)] == [0, 0, 0, 0, 0]


def test_parse_listing_reads_connection_counts():
    listing = ipvs.parse_listing(fixture_text('ln_mixed.txt'))
    assert listing[WEB][0] == []
    assert listing[WEB][1][('198.18.1.133', 8080)] == [2, 0, 0]


@pytest.mark.parametrize('line', [
    '-X -t 198.18.0.1:80',
    '-A -t 198.18.0.1:80 -s rr --bogus',
    '-A -t 198.18.0.1 -s rr',
    '-a -t 198.18.0.1:80 -m -w 1',
    '-A -s rr',
])
def test_parse_rule_refuses_what_it_cannot_read(line):
    with pytest.raises(ipvs.IpvsError):
        ipvs.parse_rule(line)


def test_parse_save_refuses_a_real_server_before_its_service():
    with pytest.raises(ipvs.IpvsError, match='before its service'):
        ipvs.parse_save('-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m -w 1\n')


# --- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize('overrides, field, message', [
    (dict(address='198.18.0.300'), 'address', 'not an IPv4 or IPv6 address'),
    (dict(port=0), 'port', 'out of range 1-65535'),
    (dict(port=65536), 'port', 'out of range 1-65535'),
    (dict(fwmark=7), 'fwmark', 'no address or port'),
    (dict(fwmark=0, address=None, port=None), 'fwmark', 'out of range'),
    (dict(address=None, port=None), 'address', 'give address and port, or fwmark'),
    (dict(scheduler='random'), 'scheduler', 'unknown scheduler'),
    (dict(scheduler_flags=['sh-port']), 'scheduler_flags', 'does not apply to scheduler wlc'),
    (dict(scheduler='mh', scheduler_flags=['sh-port']), 'scheduler_flags', 'it takes mh-fallback, mh-port'),
    (dict(persistent=0, persistent_netmask='255.255.255.0'), 'persistent_netmask', 'set persistent'),
    (dict(persistent_netmask='255.0.255.0'), 'persistent_netmask', 'not an IPv4 netmask'),
    (dict(address='2001:db8::1', persistent_netmask='255.255.255.0'), 'persistent_netmask', 'prefix length'),
    (dict(persistent=0, persistence_engine='sip'), 'persistence_engine', 'set persistent'),
    (dict(one_packet=True), 'one_packet', 'only for UDP'),
    (dict(family='ipv6'), 'family', 'does not match'),
    (dict(real_servers=[dict(address='198.18.1.132'), dict(address='198.18.1.132', port=80)]),
     'real_servers[1]', 'duplicate of real_servers[0] (198.18.1.132:80)'),
    (dict(real_servers=[dict(address='rs1.example')]), 'real_servers[0].address', 'not an IPv4 or IPv6 address'),
    (dict(real_servers=[dict(address='198.18.1.132', port=0)]), 'real_servers[0].port', 'out of range 1-65535'),
    (dict(real_servers=[dict(address='198.18.1.132', port=70000)]), 'real_servers[0].port', 'out of range'),
    (dict(real_servers=[dict(address='198.18.1.132', weight=65536)]), 'real_servers[0].weight', 'out of range 0-65535'),
    (dict(real_servers=[dict(address='198.18.1.132', weight=-1)]), 'real_servers[0].weight', 'out of range'),
    (dict(forwarding='dr', real_servers=[dict(address='198.18.1.132', port=8080)]),
     'real_servers[0].port', 'only nat forwarding can map ports'),
    (dict(real_servers=[dict(address='2001:db8::2')]), 'real_servers[0].address', 'only with tunnel forwarding'),
    (dict(real_servers=[dict(address='198.18.1.132', lower_threshold=5)]),
     'real_servers[0].lower_threshold', 'above the upper threshold'),
    (dict(real_servers=[dict(address='198.18.1.132', forwarding='bridge')]), 'real_servers[0].forwarding', 'choose'),
    (dict(real_servers=[dict(port=80)]), 'real_servers[0].address', 'is required'),
])
def test_bad_input_names_its_field(overrides, field, message):
    with pytest.raises(ipvs.ValidationError) as err:
        desired(**overrides)
    assert err.value.field == field
    assert message in str(err.value)
    assert str(err.value).startswith(field + ': ')


def test_tunnel_may_carry_ipv4_real_servers_in_an_ipv6_service():
    service, dests = desired(address='2001:DB8::1', persistent_netmask='64', forwarding='tunnel',
                             real_servers=[dict(address='198.18.1.132'), dict(address='2001:db8:0::2')])
    assert service.key == ('addr', 'ipv6', 'tcp', '2001:db8::1', 80)
    assert [entry[1].address for entry in dests] == ['198.18.1.132', '2001:db8::2']


def test_defaults_follow_ipvsadm():
    service, dests = ipvs.desired_service(dict(address='198.18.0.144', port=80, real_servers=[{'address': '198.18.1.1'}]))
    assert service.scheduler == 'wlc' and service.persistent == 0
    (state, dest, field), = dests
    assert (state, dest.port, dest.forwarding, dest.weight, field) == ('present', 80, 'dr', 1, 'real_servers[0]')


def test_a_default_netmask_is_the_same_as_none():
    assert desired(persistent_netmask='255.255.255.255')[0] == desired()[0]
    assert desired(address='2001:db8::1', persistent_netmask='128', real_servers=[])[0].persistent_netmask is None


# --- planning -----------------------------------------------------------------------------------

def test_plan_creates_service_then_real_servers():
    service, dests = desired()
    commands, after = ipvs.plan({}, service, dests)
    assert commands == ['-A -t 198.18.0.144:80 -s wlc -p 3',
                        '-a -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1',
                        '-a -t 198.18.0.144:80 -r 198.18.1.133:80 -m -w 1']
    assert sorted(after[1]) == [('198.18.1.132', 80), ('198.18.1.133', 80)]


def test_plan_is_empty_when_the_table_already_matches():
    service, dests = desired()
    after = ipvs.plan({}, service, dests)[1]
    table = ipvs.parse_save(ipvs.render_entry(*after))
    assert ipvs.plan(table, service, dests, purge=True) == ([], after)


def test_plan_edits_the_service_with_its_full_spec():
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    service, dests = desired(scheduler='rr', persistent=0,
                             real_servers=[dict(address='198.18.1.132'), dict(address='198.18.1.133', port=8080, weight=2)])
    commands = ipvs.plan(table, service, dests)[0]
    assert commands == ['-E -t 198.18.0.144:80 -s rr']


def test_plan_edits_a_changed_real_server_and_resets_thresholds_it_does_not_want():
    table = ipvs.parse_save(fixture_text('sn_thresholds.txt'))
    ipvs.apply_thresholds(table, ipvs.parse_listing(fixture_text('ln_thresholds.txt')))
    service, dests = desired(real_servers=[dict(address='198.18.1.133', port=8080, weight=2, upper_threshold=100,
                                                lower_threshold=10),
                                           dict(address='198.18.1.134', port=8080, weight=5)])
    commands = ipvs.plan(table, service, dests)[0]
    assert commands == ['-e -t 198.18.0.144:80 -r 198.18.1.134:8080 -m -w 5']


def test_plan_keeps_unlisted_real_servers_unless_purging():
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    service, dests = desired(real_servers=[dict(address='198.18.1.132')])
    assert ipvs.plan(table, service, dests)[0] == []
    assert ipvs.plan(table, service, dests, purge=True)[0] == ['-d -t 198.18.0.144:80 -r 198.18.1.133:8080']


def test_drain_sets_weight_zero_instead_of_deleting_and_then_rests():
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    service, dests = desired(real_servers=[dict(address='198.18.1.132')])
    commands, after = ipvs.plan(table, service, dests, purge=True, drain=True)
    assert commands == ['-e -t 198.18.0.144:80 -r 198.18.1.133:8080 -m -w 0']
    drained = ipvs.parse_save(ipvs.render_entry(*after))
    assert ipvs.plan(drained, service, dests, purge=True, drain=True)[0] == []


def test_absent_real_server_is_deleted_or_drained():
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    service, dests = desired(real_servers=[dict(address='198.18.1.133', port=8080, state='absent')])
    assert ipvs.plan(table, service, dests)[0] == ['-d -t 198.18.0.144:80 -r 198.18.1.133:8080']
    assert ipvs.plan(table, service, dests, drain=True)[0] == ['-e -t 198.18.0.144:80 -r 198.18.1.133:8080 -m -w 0']
    assert ipvs.plan({}, *desired(real_servers=[dict(address='198.18.1.9', state='absent')]))[0] == [
        '-A -t 198.18.0.144:80 -s wlc -p 3']


def test_a_port_change_is_a_different_real_server():
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    service, dests = desired(real_servers=[dict(address='198.18.1.132'), dict(address='198.18.1.133', port=8081, weight=2)])
    assert ipvs.plan(table, service, dests, purge=True)[0] == [
        '-d -t 198.18.0.144:80 -r 198.18.1.133:8080',
        '-a -t 198.18.0.144:80 -r 198.18.1.133:8081 -m -w 2']


def test_state_absent_deletes_the_service_once():
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    service, dests = desired()
    assert ipvs.plan(table, service, dests, state='absent') == (['-D -t 198.18.0.144:80'], (None, {}))
    assert ipvs.plan({}, service, dests, state='absent') == ([], (None, {}))


def test_fwmark_and_ipv6_services_render_their_switches():
    service, dests = ipvs.desired_service(dict(fwmark=8, family='ipv6', scheduler='mh', scheduler_flags=['mh-port'],
                                               persistent=60, persistent_netmask='64', forwarding='dr',
                                               real_servers=[dict(address='2001:db8::2')]))
    assert ipvs.plan({}, service, dests)[0] == ['-A -f 8 -6 -s mh -p 60 -M 64 -b mh-port',
                                                '-a -f 8 -6 -r [2001:db8::2]:0 -g -w 1']
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    # The captured fwmark 8 service already is this one, without real servers.
    assert ipvs.plan(table, service, dests)[0] == ['-a -f 8 -6 -r [2001:db8::2]:0 -g -w 1']


def test_the_tunnel_type_ipvsadm_prints_is_no_difference():
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    service, dests = ipvs.desired_service(dict(protocol='udp', address='198.18.0.144', port=53, scheduler='rr',
                                               forwarding='dr',
                                               real_servers=[dict(address='198.18.1.132'),
                                                             dict(address='198.18.1.133', weight=0, forwarding='tunnel')]))
    assert ipvs.plan(table, service, dests, purge=True)[0] == []


def test_service_to_dict_has_the_module_option_shape():
    table = ipvs.parse_save(fixture_text('sn_mixed.txt'))
    data = ipvs.service_to_dict(*table[WEB])
    assert data['address'] == '198.18.0.144' and data['protocol'] == 'tcp' and data['fwmark'] is None
    assert data['persistent_netmask'] == '255.255.255.255'
    assert data['real_servers'][1] == dict(address='198.18.1.133', port=8080, forwarding='nat', weight=2,
                                           upper_threshold=0, lower_threshold=0)


# Each field of a service and of a real server, changed alone, is one edit line carrying it: a field
# the comparison or the rendering ignored would give no line, or a line without it.
@pytest.mark.parametrize('overrides, line', [
    (dict(scheduler='rr'), '-E -t 198.18.0.144:80 -s rr -p 3'),
    (dict(scheduler='sh', scheduler_flags=['sh-port']), '-E -t 198.18.0.144:80 -s sh -p 3 -b sh-port'),
    (dict(persistent=60), '-E -t 198.18.0.144:80 -s wlc -p 60'),
    (dict(persistent_netmask='255.255.255.0'), '-E -t 198.18.0.144:80 -s wlc -p 3 -M 255.255.255.0'),
    (dict(persistence_engine='sip'), '-E -t 198.18.0.144:80 -s wlc -p 3 --pe sip'),
    (dict(real_servers=[dict(address='198.18.1.132', port=80, weight=3), dict(address='198.18.1.133', port=80)]),
     '-e -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 3'),
    (dict(real_servers=[dict(address='198.18.1.132', port=80, upper_threshold=100),
                        dict(address='198.18.1.133', port=80)]),
     '-e -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1 -x 100'),
    (dict(real_servers=[dict(address='198.18.1.132', port=80, upper_threshold=100, lower_threshold=10),
                        dict(address='198.18.1.133', port=80)]),
     '-e -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1 -x 100 -y 10'),
], ids=['scheduler', 'scheduler_flags', 'persistent', 'persistent_netmask', 'persistence_engine', 'weight',
        'upper_threshold', 'both_thresholds'])
def test_plan_sees_each_field_changed_alone(overrides, line):
    table = ipvs.parse_save(ipvs.render_entry(*ipvs.plan({}, *desired())[1]))
    service, dests = desired(**overrides)
    assert ipvs.plan(table, service, dests, purge=True)[0] == [line]


def test_plan_sees_a_threshold_change_on_a_server_that_has_thresholds():
    service, dests = desired(real_servers=[dict(address='198.18.1.132', port=80, upper_threshold=100, lower_threshold=10),
                                           dict(address='198.18.1.133', port=80)])
    table = {service.key: (service, {(d.address, d.port): d for _state, d, _field in dests})}
    upper = desired(real_servers=[dict(address='198.18.1.132', port=80, upper_threshold=200, lower_threshold=10),
                                  dict(address='198.18.1.133', port=80)])
    lower = desired(real_servers=[dict(address='198.18.1.132', port=80, upper_threshold=100, lower_threshold=20),
                                  dict(address='198.18.1.133', port=80)])
    assert ipvs.plan(table, *upper)[0] == ['-e -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1 -x 200 -y 10']
    assert ipvs.plan(table, *lower)[0] == ['-e -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1 -x 100 -y 20']


def test_plan_removes_two_real_servers_and_touches_nothing_else():
    table = ipvs.parse_save('-A -t 198.18.0.144:80 -s wlc -p 3\n'
                            '-a -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1\n'
                            '-a -t 198.18.0.144:80 -r 198.18.1.133:80 -m -w 1\n'
                            '-a -t 198.18.0.144:80 -r 198.18.1.134:80 -m -w 1\n')
    both = ['-d -t 198.18.0.144:80 -r 198.18.1.133:80', '-d -t 198.18.0.144:80 -r 198.18.1.134:80']
    service, dests = desired(real_servers=[dict(address='198.18.1.132', port=80)])
    commands, after = ipvs.plan(table, service, dests, purge=True)
    assert commands == both and sorted(after[1]) == [('198.18.1.132', 80)]
    service, dests = desired(real_servers=[dict(address='198.18.1.133', port=80, state='absent'),
                                           dict(address='198.18.1.134', port=80, state='absent')])
    commands, after = ipvs.plan(table, service, dests)
    assert commands == both and sorted(after[1]) == [('198.18.1.132', 80)]
