"""kernel_settings as data: each case in kernel_settings.yml gives the module's input, the host
before (/proc/sys, /proc/modules, /sys/module, modules.builtin, the files), what modprobe does, and
what the module must run, return and leave behind.

The host is a scratch directory standing for / (the module_utils' private _root), and modprobe a
fake that adds the modules it loads to /proc/modules with the settings they bring. So these prove
the module's logic, not the kernel's: the molecule scenarios (nat, dr, tun) run the roles' use of it
on real kernels, through a reboot.

Besides each case's own expectations, every case is also run in check mode (nothing on the host
changes, and it reports the change the real run makes), and every case that applies is run a
second time (it changes nothing, runs nothing, writes nothing).
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible_collections.lvs.cluster.plugins.module_utils import kernel_settings as utils
from ansible_collections.lvs.cluster.plugins.modules import kernel_settings

from conftest import FIXTURES
from test_ipvs_service import run_module

with open(os.path.join(FIXTURES, 'kernel_settings.yml')) as handle:
    CASES = yaml.safe_load(handle)


def make_host(root, case):
    """The host of a case under root."""
    def write(path, text):
        path = os.path.join(root, path.lstrip('/'))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as handle:
            handle.write(text)

    for name, value in (case.get('proc_sys') or {}).items():
        if value is None:   # a group of settings
            os.makedirs(os.path.join(root, 'proc/sys', utils.sysctl_path(name)))
        else:
            write('/proc/sys/' + utils.sysctl_path(name), '%s\n' % value)
    write('/proc/sys/kernel/osrelease', '6.1.0-lab\n')
    if case.get('proc_modules', '') is not None:
        write('/proc/modules', case.get('proc_modules', ''))
    for name in case.get('sys_module') or []:
        os.makedirs(os.path.join(root, 'sys/module', name))
    if case.get('modules_builtin'):
        write('/lib/modules/6.1.0-lab/modules.builtin', ''.join('%s\n' % line for line in case['modules_builtin']))
    for path, text in (case.get('files') or {}).items():
        write(path, text)


def snapshot(root):
    """Every file under root and its text, every directory."""
    tree = {}
    for top, dirs, files in os.walk(root):
        for name in dirs:
            tree[os.path.relpath(os.path.join(top, name), root) + '/'] = None
        for name in files:
            with open(os.path.join(top, name)) as handle:
                tree[os.path.relpath(os.path.join(top, name), root)] = handle.read()
    return tree


class FakeModprobe:
    """`modprobe -a NAME...`: each module the case's modprobe.loads knows goes to /proc/modules (as
    the name it shows as) with the settings it brings; the first it does not know stops it, as kmod's
    modprobe stops at the first module it cannot load."""

    def __init__(self, root, case):
        self.root = root
        self.loads = (case.get('modprobe') or {}).get('loads') or {}
        self.calls = []

    def __call__(self, argv, **kwargs):
        assert kwargs.get('environ_update', {}).get('LANG') == 'C'
        self.calls.append(' '.join(argv))
        assert argv[:2] == ['/usr/sbin/modprobe', '-a'], argv
        for name in argv[2:]:
            if name not in self.loads:
                return 1, '', 'modprobe: FATAL: Module %s not found in directory /lib/modules/6.1.0-lab\n' % name
            effect = self.loads[name] or {}
            with open(os.path.join(self.root, 'proc/modules'), 'a') as handle:
                handle.write('%s 16384 0 - Live 0x0000000000000000\n' % effect.get('shows_as', name))
            for key, value in (effect.get('sysctls') or {}).items():
                path = os.path.join(self.root, 'proc/sys', utils.sysctl_path(key))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, 'w') as handle:
                    handle.write('%s\n' % value)
        return 0, '', ''


def run(case, root, monkeypatch, check_mode=False, diff=False):
    fake = FakeModprobe(str(root), case)
    result = run_module(lambda: utils.ensure_kernel_settings(kernel_settings.build_module(), _root=str(root)),
                        case['args'], fake, monkeypatch, check_mode=check_mode, diff=diff)
    return result, fake


def sysctl_value(root, name):
    with open(os.path.join(str(root), 'proc/sys', utils.sysctl_path(name))) as handle:
        return handle.read().strip()


@pytest.mark.parametrize('case', CASES, ids=[case['name'] for case in CASES])
def test_kernel_settings(case, monkeypatch, tmp_path):
    make_host(str(tmp_path), case)
    before = snapshot(str(tmp_path))
    expect = case['expect']
    result, fake = run(case, tmp_path, monkeypatch, case.get('check_mode', False), diff='diff' in expect)
    assert result.get('failed', False) == expect.get('failed', False), json.dumps(result, indent=1)
    for key in ('changed', 'modules_loaded', 'sysctls_changed', 'errors', 'missing', 'rc'):
        if key in expect:
            assert result.get(key) == expect[key], key
    if 'msg' in expect:
        assert expect['msg'] in result['msg'], result['msg']
    assert result['_warnings'] == expect.get('warnings', [])
    assert fake.calls == expect.get('calls', [])
    if 'diff' in expect:
        assert result['diff'] == expect['diff']
    else:
        assert 'diff' not in result, 'a diff is computed only in diff mode'
    for name, value in (expect.get('proc_sys') or {}).items():
        assert sysctl_value(tmp_path, name) == value, name
    after = snapshot(str(tmp_path))
    etc = dict((path, text) for path, text in after.items() if path.startswith('etc/') and text is not None)
    wanted = dict((path.lstrip('/'), text) for path, text in (case.get('files') or {}).items())
    wanted.update((path.lstrip('/'), text) for path, text in (expect.get('files') or {}).items())
    assert etc == dict((path, text) for path, text in wanted.items() if text is not None)
    if expect.get('failed') and expect.get('nothing_changed'):
        assert after == before


@pytest.mark.parametrize('case', [case for case in CASES if not case.get('check_mode')], ids=lambda case: case['name'])
def test_check_mode_changes_nothing_and_reports_what_the_run_does(case, monkeypatch, tmp_path):
    real, check = tmp_path / 'real', tmp_path / 'check'
    for root in (real, check):
        make_host(str(root), case)
    before = snapshot(str(check))
    checked, fake = run(case, check, monkeypatch, check_mode=True, diff=True)
    assert fake.calls == []
    assert snapshot(str(check)) == before
    done = run(case, real, monkeypatch)[0]
    if done.get('failed'):
        return
    assert checked.get('failed', False) is False, checked['msg']
    assert checked['changed'] == done['changed']
    assert checked['modules_loaded'] == done['modules_loaded']
    # a setting a module brings shows in check mode as missing, to be set; the run knows its value
    assert set(done['sysctls_changed']) <= set(checked['sysctls_changed'])
    assert bool(checked['diff']) == checked['changed']


@pytest.mark.parametrize('case', [case for case in CASES if not case.get('check_mode') and not case['expect'].get('failed')
                                  and not case.get('repeats')], ids=lambda case: case['name'])
def test_a_second_run_changes_nothing(case, monkeypatch, tmp_path):
    make_host(str(tmp_path), case)
    run(case, tmp_path, monkeypatch)
    before = snapshot(str(tmp_path))
    again, fake = run(case, tmp_path, monkeypatch, diff=True)
    assert again.get('failed', False) is False, again['msg']
    assert (again['changed'], again['modules_loaded'], again['sysctls_changed'], again['diff']) == (False, [], [], [])
    assert fake.calls == []
    assert snapshot(str(tmp_path)) == before


def test_a_setting_the_kernel_refuses_fails_naming_it_and_writes_no_file(monkeypatch, tmp_path):
    case = {'proc_sys': {'net.ipv4.ip_forward': '0', 'net.ipv4.conf.all.send_redirects': '1'},
            'args': {'sysctls': [{'name': 'net.ipv4.ip_forward', 'value': '1'},
                                 {'name': 'net.ipv4.conf.all.send_redirects', 'value': 'abc'}],
                     'sysctl_file': '/etc/sysctl.d/90-lvs-director.conf'}}
    make_host(str(tmp_path), case)
    written = utils.Kernel.write_sysctl

    def refuse(self, name, value):
        if value == 'abc':
            raise utils.KernelSettingsError('%s: the kernel refused the value %r (Invalid argument)' % (name, value))
        written(self, name, value)

    monkeypatch.setattr(utils.Kernel, 'write_sysctl', refuse)
    result = run(case, tmp_path, monkeypatch)[0]
    assert result['failed'] is True
    assert result['msg'] == ("net.ipv4.conf.all.send_redirects: the kernel refused the value 'abc' (Invalid argument)"
                             " (set before it: net.ipv4.ip_forward; no file was written)")
    assert result['sysctls_changed'] == ['net.ipv4.ip_forward']
    assert not os.path.exists(tmp_path / 'etc')


def test_the_real_write_gives_the_kernel_the_value_and_a_newline(tmp_path):
    make_host(str(tmp_path), {'proc_sys': {'net.ipv4.conf.eth0/100.rp_filter': '1'}})
    kernel = utils.Kernel(str(tmp_path))
    kernel.write_sysctl('net.ipv4.conf.eth0/100.rp_filter', '2')
    assert (tmp_path / 'proc/sys/net/ipv4/conf/eth0.100/rp_filter').read_text() == '2\n'
    with pytest.raises(utils.KernelSettingsError, match=r'^net\.ipv4\.conf\.eth9\.rp_filter: no such setting on this host'):
        kernel.write_sysctl('net.ipv4.conf.eth9.rp_filter', '2')


def test_a_value_the_kernel_holds_otherwise_after_the_write_is_warned_about(monkeypatch, tmp_path):
    case = {'proc_sys': {'net.core.somaxconn': '128'}, 'args': {'sysctls': [{'name': 'net.core.somaxconn', 'value': '99999999'}]}}
    make_host(str(tmp_path), case)
    written = utils.Kernel.write_sysctl
    monkeypatch.setattr(utils.Kernel, 'write_sysctl', lambda self, name, value: written(self, name, '65535'))   # clamped
    result = run(case, tmp_path, monkeypatch)[0]
    assert result['sysctls_changed'] == ['net.core.somaxconn']
    assert result['_warnings'] == ['net.core.somaxconn was set to 99999999, but the kernel shows 65535']
