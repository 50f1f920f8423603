"""The pure parts of lvs.cluster.kernel_settings (module_utils/kernel_settings.py): names, values,
/proc/modules and modules.builtin, the plan, the files. No host: the module's tests as data
(tests/unit/plugins/modules/test_kernel_settings.py) run it against a scratch root."""

from __future__ import annotations

import pytest

from ansible_collections.lvs.cluster.plugins.module_utils import kernel_settings as ks

# /proc/modules as the lab kernel (Linux 6.1) prints it on a director: a module in use lists its users.
PROC_MODULES = """\
ip_vs_wlc 12288 1 - Live 0x0000000000000000
ip_vs 180224 3 ip_vs_wlc, Live 0x0000000000000000
nf_conntrack 176128 1 ip_vs, Live 0x0000000000000000
ipip 16384 0 - Unloading 0x0000000000000000
overlay 151552 0 - Live 0x0000000000000000 (O)
"""


def test_proc_modules_lists_the_loaded_modules_but_not_one_being_unloaded():
    assert ks.parse_proc_modules(PROC_MODULES) == {'ip_vs_wlc', 'ip_vs', 'nf_conntrack', 'overlay'}
    assert ks.parse_proc_modules('') == set()


def test_modules_builtin_gives_the_modules_names_with_underscores():
    text = 'kernel/net/ipv4/ipip.ko\nkernel/drivers/net/dummy-thing.ko\n\nkernel/fs/ext4/ext4.ko.xz\n'
    assert ks.parse_modules_builtin(text) == {'ipip', 'dummy_thing', 'ext4'}


@pytest.mark.parametrize('name, path', [
    ('net.ipv4.ip_forward', 'net/ipv4/ip_forward'),
    ('net.ipv4.conf.eth0/100.rp_filter', 'net/ipv4/conf/eth0.100/rp_filter'),   # model._sysctl_key's spelling
    ('net/ipv4/conf/eth0.100/rp_filter', 'net/ipv4/conf/eth0.100/rp_filter'),   # already a path
    ('kernel.hostname', 'kernel/hostname'),
])
def test_a_name_maps_to_its_path_under_proc_sys_as_sysctl_maps_it(name, path):
    assert ks.sysctl_path(name) == path


@pytest.mark.parametrize('value, text', [('1', '1'), (1, '1'), (True, '1'), (False, '0'), (' 4096\t131072  6291456\n', '4096 131072 6291456'),
                                         ('cubic', 'cubic'), ('', '')])
def test_a_value_is_text_with_one_space_between_words(value, text):
    assert ks.normalize_value(value) == text


@pytest.mark.parametrize('value', [None, [1, 2], {'a': 1}])
def test_what_is_no_value_is_refused(value):
    with pytest.raises(ValueError, match='must be text or a number'):
        ks.normalize_value(value)


@pytest.mark.parametrize('current, wanted, equal', [
    ('1', '1', True), ('01', '1', True), ('-1', '-1', True), ('4096\t131072\t6291456', '4096 131072 6291456', True),
    ('4096\t131072', '4096 131072 6291456', False), ('reno', 'cubic', False), ('1', '2', False),
    ('1_0', '10', False),   # text, not Python's int('1_0')
    (ks.MISSING, '1', False), (ks.UNREADABLE, '1', False),
])
def test_values_compare_word_by_word_and_numbers_as_numbers(current, wanted, equal):
    assert ks.values_equal(current, wanted) is equal


def test_the_settings_are_checked_every_error_naming_its_field():
    checked, errors = ks.check_sysctls([
        {'name': ' net.ipv4.ip_forward ', 'value': 1},
        {'name': 'net.ipv4 .ip_forward', 'value': '1'},
        {'name': 'net.ipv4.conf.all.rp_filter', 'value': ''},
        {'name': 'net.ipv4.conf.all.rp_filter', 'value': None},
        'net.ipv4.ip_forward=1',
        {'name': 5, 'value': 1},
        {'name': '-net.ipv4.ip_forward', 'value': 1},
        {'name': 'net.ipv4.conf.../x', 'value': 1},
        {'name': 'net/ipv4/ip_forward', 'value': '1'},    # the same setting, the same value: once
    ])
    assert checked == [('net.ipv4.ip_forward', '1')]
    assert errors == [
        "sysctls[1].name: 'net.ipv4 .ip_forward' has white space in it: a setting's name is one word, such as net.ipv4.ip_forward",
        'sysctls[2].value: is empty (net.ipv4.conf.all.rp_filter needs a value)',
        'sysctls[3].value: must be text or a number, got nothing',
        'sysctls[4]: must be a dictionary with a name and a value',
        'sysctls[5].name: must be text, got int',
        "sysctls[6].name: '-net.ipv4.ip_forward' starts with '-': give the setting's own name, such as net.ipv4.ip_forward",
        "sysctls[7].name: 'net.ipv4.conf.../x' is not a setting's name (an empty part, '.' or '..')",
    ]


def test_a_setting_given_twice_with_another_value_is_an_error_naming_both():
    errors = ks.check_sysctls([{'name': 'net.ipv4.ip_forward', 'value': '1'}, {'name': 'net.ipv4.ip_forward', 'value': '0'}])[1]
    assert errors == ['sysctls[1].name: net.ipv4.ip_forward is given twice with different values (sysctls[0]: 1, here: 0)']


def test_the_modules_are_checked_and_each_is_once():
    checked, errors = ks.check_modules(['ip_vs', 'ip-vs', ' ipip ', '/lib/modules/x/ipip.ko', '', 'ip_vs_wlc.ko', '--force', 'a;b'])
    assert checked == ['ip_vs', 'ipip']
    assert errors == [
        "modules[3]: '/lib/modules/x/ipip.ko' is a path: give the module's name, as lsmod shows it (such as ipip)",
        'modules[4]: is empty',
        "modules[5]: 'ip_vs_wlc.ko' is a file name: give the module's name (ip_vs_wlc)",
        "modules[6]: '--force' starts with '-': give the module's name, not an option",
        "modules[7]: 'a;b' is not a kernel module's name (letters, digits, '_' and '-')",
    ]


def test_the_plan_sets_only_what_differs_in_the_order_given():
    wanted = [('net.ipv4.ip_forward', '1'), ('net.ipv4.conf.all.send_redirects', '0'), ('net.ipv4.vs.expire_nodest_conn', '1')]
    current = {'net.ipv4.ip_forward': '0', 'net.ipv4.conf.all.send_redirects': '0', 'net.ipv4.vs.expire_nodest_conn': ks.MISSING}
    assert ks.plan_sysctls(wanted, current) == [ks.SysctlChange('net.ipv4.ip_forward', '0', '1'),
                                                ks.SysctlChange('net.ipv4.vs.expire_nodest_conn', ks.MISSING, '1')]
    assert ks.plan_sysctls(wanted, dict((name, value) for name, value in wanted)) == []


def test_the_plan_loads_the_modules_neither_loaded_nor_built_in():
    present = ks.parse_proc_modules(PROC_MODULES) | {'ipv6'}
    assert ks.plan_modules(['ip_vs', 'ip-vs-wlc', 'ipip', 'ipv6', 'ip_vs_mh'], present) == ['ipip', 'ip_vs_mh']


def test_the_files_have_a_header_naming_the_module_then_the_list():
    assert ks.render_sysctl_file([('net.ipv4.ip_forward', '1'), ('net.ipv4.tcp_rmem', '4096 131072 6291456')],
                                 header='Kept by the lvs.cluster.director role\n\nsecond line') == (
        '# Kernel settings that systemd-sysctl sets at boot, written by lvs.cluster.kernel_settings (Ansible).\n'
        '# Kept by the lvs.cluster.director role\n'
        '#\n'
        '# second line\n'
        '# Each run replaces this file: change the list where it is given, not here.\n'
        'net.ipv4.ip_forward = 1\n'
        'net.ipv4.tcp_rmem = 4096 131072 6291456\n')
    assert ks.render_modules_file(['ip_vs', 'ip_vs_wlc']) == (
        '# Kernel modules that systemd-modules-load loads at boot, written by lvs.cluster.kernel_settings (Ansible).\n'
        '# Each run replaces this file: change the list where it is given, not here.\n'
        'ip_vs\nip_vs_wlc\n')


def test_an_empty_list_is_no_file():
    assert ks.render_sysctl_file([]) is None and ks.render_modules_file([]) is None
    assert ks.file_change('/etc/x.conf', 'ip_vs\n', None) == ks.FileChange('/etc/x.conf', 'ip_vs\n', None)
    assert ks.file_change('/etc/x.conf', None, None) is None
    assert ks.file_change('/etc/x.conf', 'same\n', 'same\n') is None


def test_the_diff_lists_modules_their_file_the_settings_and_their_file_in_that_order():
    changes = [ks.SysctlChange('net.ipv4.ip_forward', '0', '1'), ks.SysctlChange('net.ipv4.vs.expire_nodest_conn', ks.MISSING, '1'),
               ks.SysctlChange('vm.drop_caches', ks.UNREADABLE, '3')]
    diff = ks.diffs(['ip_vs_wlc'], ['ip_vs'], ks.FileChange('/m.conf', None, 'ip_vs\nip_vs_wlc\n'), changes,
                    ks.FileChange('/s.conf', 'old\n', None))
    assert [d['before_header'] for d in diff] == ['kernel modules loaded (before)', '/m.conf', 'kernel settings now (before)', '/s.conf']
    assert (diff[0]['before'], diff[0]['after']) == ('ip_vs\n', 'ip_vs\nip_vs_wlc\n')
    assert (diff[1]['before'], diff[3]['after']) == ('', '')
    assert diff[2]['before'] == ('net.ipv4.ip_forward = 0\nnet.ipv4.vs.expire_nodest_conn = (no such setting)\n'
                                 'vm.drop_caches = (not readable)\n')
    assert diff[2]['after'] == 'net.ipv4.ip_forward = 1\nnet.ipv4.vs.expire_nodest_conn = 1\nvm.drop_caches = 3\n'
    assert ks.diffs([], ['ip_vs'], None, [], None) == []
