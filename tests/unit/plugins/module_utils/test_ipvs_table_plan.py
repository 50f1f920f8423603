"""The whole-table plan (module_utils/ipvs_table.py): checking a list, planning one batch over the
kernel's table with ownership, the rules file and the record. Pure: tables are parsed from
`ipvsadm -S -n` text; tests/integration/targets/ipvs_table runs the same against real IPVS."""

from __future__ import annotations

import pytest

from ansible_collections.lvs.cluster.plugins.module_utils import ipvs, ipvs_table

WEB = {'name': 'web', 'address': '198.18.0.144', 'port': 80, 'scheduler': 'wlc',
       'real_servers': [{'address': '198.18.1.132'}, {'address': '198.18.1.133', 'weight': 2}]}
MAIL = {'name': 'mail', 'address': '198.18.0.144', 'port': 25, 'real_servers': [{'address': '198.18.1.133'}]}
TABLE = ipvs.parse_save('-A -t 198.18.0.144:80 -s wlc\n'
                        '-a -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1\n'
                        '-a -t 198.18.0.144:80 -r 198.18.1.133:80 -m -w 2\n'
                        '-A -t 198.18.0.144:25 -s wlc\n'
                        '-a -t 198.18.0.144:25 -r 198.18.1.133:25 -m -w 1\n'
                        '-A -t 198.18.0.99:80 -s rr\n')
WEB_KEY, MAIL_KEY, HAND_KEY = ('addr', 'ipv4', 'tcp', '198.18.0.144', 80), ('addr', 'ipv4', 'tcp', '198.18.0.144', 25), \
    ('addr', 'ipv4', 'tcp', '198.18.0.99', 80)


def plan(entries, table=None, **options):
    table = TABLE if table is None else table
    foreign = options.pop('foreign', set())
    wanted, absent, errors = ipvs_table.desired_table(entries, 'nat', foreign)
    assert errors == []
    return ipvs_table.plan_table(table, wanted, absent, foreign=foreign, **options)


def test_every_bad_entry_is_named_by_its_index_name_and_field():
    entries = [WEB, dict(MAIL, port=0), 'web', dict(WEB, name='web2', real_servers=[{'address': '198.18.1.300'}]),
               dict(WEB, name='again', port='80')]
    errors = ipvs_table.desired_table(entries, 'nat')[2]
    assert errors == [
        'virtual_services[1] (mail).port: port 0 is out of range 1-65535',
        'virtual_services[2]: must be a dictionary (a virtual service)',
        "virtual_services[3] (web2).real_servers[0].address: '198.18.1.300' is not an IPv4 or IPv6 address",
        'virtual_services[4] (again): the same virtual service as virtual_services[0] (web) (tcp 198.18.0.144:80)']


def test_text_from_inventory_is_converted_as_the_module_converts_it():
    wanted = ipvs_table.desired_table([dict(WEB, port='80', real_servers=[{'address': '198.18.1.132', 'weight': '3'}])], 'nat')[0]
    assert wanted[WEB_KEY].dests[0][1].weight == 3


def test_unknown_fields_and_wrong_types_are_named():
    errors = ipvs_table.desired_table([dict(WEB, wieght=1), dict(MAIL, real_servers=[{'address': '198.18.1.133', 'weight': 'heavy'}])],
                                      'nat')[2]
    assert errors[0].startswith('virtual_services[0] (web).wieght: unknown option (known: ')
    assert errors[1].startswith("virtual_services[1] (mail).real_servers[0].weight: ")


@pytest.mark.parametrize('entry', [WEB, MAIL, dict(WEB, forwarding='dr', persistent=30, persistent_netmask='255.255.255.0'),
                                   {'fwmark': 7, 'scheduler': 'sh', 'scheduler_flags': ['sh-port'], 'real_servers': [{'address': '198.18.1.132'}]}])
def test_an_exact_entry_is_taken_as_it_is_and_plans_what_the_converted_one_plans(entry, monkeypatch):
    fast = ipvs_table.desired_table([entry], 'nat')
    monkeypatch.setattr(ipvs_table, '_exact', lambda spec, params: False)
    slow = ipvs_table.desired_table([entry], 'nat')
    assert fast == slow


def test_keepalived_fields_are_set_aside():
    wanted, dummy, errors = ipvs_table.desired_table([dict(WEB, health_check={'type': 'tcp'}, quorum=1)], 'nat')
    assert errors == [] and list(wanted) == [WEB_KEY]


def test_a_listed_service_also_given_as_another_writers_is_refused():
    errors = ipvs_table.desired_table([WEB], 'nat', {WEB_KEY})[2]
    assert errors == ["virtual_services[0] (web): tcp 198.18.0.144:80 is another writer's (foreign_services): list it in one place only"]


def test_what_the_kernel_has_already_plans_nothing_and_records_the_listed():
    result = plan([WEB, MAIL], owned=[WEB_KEY, MAIL_KEY])
    assert result.commands == [] and result.changes == [] and result.record == [WEB_KEY, MAIL_KEY]


def test_a_service_made_before_and_no_longer_listed_is_removed_and_one_never_made_is_kept():
    result = plan([WEB], owned=[WEB_KEY, MAIL_KEY])
    assert result.commands == ['-D -t 198.18.0.144:25']
    assert result.removed == [MAIL_KEY] and result.record == [WEB_KEY]
    assert HAND_KEY in result.table_after and MAIL_KEY not in result.table_after


def test_without_remove_unlisted_a_dropped_service_stays_and_stays_recorded():
    result = plan([WEB], owned=[WEB_KEY, MAIL_KEY], remove_unlisted=False)
    assert result.commands == [] and result.record == [WEB_KEY, MAIL_KEY]


def test_another_writers_services_are_never_touched_nor_recorded_nor_saved():
    result = plan([], owned=[WEB_KEY, MAIL_KEY], foreign={WEB_KEY})
    assert result.commands == ['-D -t 198.18.0.144:25'] and result.record == []
    assert list(result.table_after) == [HAND_KEY]


def test_an_absent_entry_is_deleted_even_if_the_module_did_not_make_it():
    result = plan([{'address': '198.18.0.99', 'port': 80, 'state': 'absent'}])
    assert result.commands == ['-D -t 198.18.0.99:80'] and result.record == []


def test_each_change_carries_its_own_lines_and_its_entry_before_and_after():
    result = plan([dict(WEB, real_servers=[{'address': '198.18.1.132'}]), dict(MAIL, scheduler='rr')])
    assert [(c.name, c.commands) for c in result.changes] == [
        ('web', ['-d -t 198.18.0.144:80 -r 198.18.1.133:80']), ('mail', ['-E -t 198.18.0.144:25 -s rr'])]
    assert ipvs.render_entry(*result.changes[0].after) == '-A -t 198.18.0.144:80 -s wlc\n-a -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1\n'


def test_timeouts_are_set_only_where_a_given_one_differs():
    now = {'tcp': 900, 'tcpfin': 120, 'udp': 300}
    assert plan([WEB, MAIL], timeouts={'tcp': 0, 'tcpfin': 120, 'udp': 0}, current_timeouts=now).commands == []
    assert plan([WEB, MAIL], timeouts={'tcp': 0, 'tcpfin': 0, 'udp': 0}, current_timeouts=now).commands == []
    assert plan([WEB, MAIL], timeouts={'tcp': 0, 'tcpfin': 30, 'udp': 0}, current_timeouts=now).commands == ['--set 0 30 0']


def test_the_rules_file_lists_the_table_after_in_a_stable_order_then_the_timeouts():
    result = plan([dict(WEB, address='198.18.0.2'), WEB], owned=[], foreign=set())
    text = ipvs_table.rules_text(result.table_after, '# ipvsadm.rules\n', {'tcp': 0, 'tcpfin': 30, 'udp': 0})
    assert text.splitlines() == [
        '# ipvsadm.rules',
        '-A -t 198.18.0.2:80 -s wlc', '-a -t 198.18.0.2:80 -r 198.18.1.132:80 -m -w 1', '-a -t 198.18.0.2:80 -r 198.18.1.133:80 -m -w 2',
        '-A -t 198.18.0.99:80 -s rr',
        '-A -t 198.18.0.144:25 -s wlc', '-a -t 198.18.0.144:25 -r 198.18.1.133:25 -m -w 1',
        '-A -t 198.18.0.144:80 -s wlc', '-a -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1', '-a -t 198.18.0.144:80 -r 198.18.1.133:80 -m -w 2',
        '--set 0 30 0']
    assert ipvs_table.rules_text(result.table_after, '', {'tcp': 0, 'tcpfin': 0, 'udp': 0}).endswith('-m -w 2\n')


def test_the_record_reads_back_what_it_wrote_and_refuses_what_is_not_a_record():
    text = ipvs_table.record_text([WEB_KEY, ('fwmark', 'ipv6', 7)])
    assert ipvs_table.record_keys(text) == [WEB_KEY, ('fwmark', 'ipv6', 7)]
    assert ipvs_table.record_keys('') == [] and ipvs_table.record_keys(None) == []
    with pytest.raises(ValueError):
        ipvs_table.record_keys('{"not": "a list"}')


def test_after_a_failed_batch_the_record_names_what_the_kernel_holds_of_what_the_module_made():
    result = plan([WEB, dict(MAIL, port=26)], owned=[MAIL_KEY])
    # the kernel took web and refused the new service and the removal
    now = dict((key, TABLE[key]) for key in (WEB_KEY, MAIL_KEY, HAND_KEY))
    assert ipvs_table.record_after_failure(now, [MAIL_KEY], result) == [WEB_KEY, MAIL_KEY]


def test_foreign_services_must_name_a_service():
    assert ipvs_table.foreign_keys([WEB, {'fwmark': 7}]) == {WEB_KEY, ('fwmark', 'ipv4', 7)}
    with pytest.raises(ValueError, match=r'foreign_services\[1\]'):
        ipvs_table.foreign_keys([WEB, {'name': 'nothing'}])
