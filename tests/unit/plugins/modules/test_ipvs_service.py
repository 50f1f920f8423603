"""ipvs_service as data: each case in ipvs_service.yml gives the module's input, what ipvsadm shows
before (and after, for a run that applies), and what the module must run and return.

ipvsadm is replaced by its captured output here, so these tests prove the module's logic (what it
reads, what it runs, what it reports), not the kernel's behaviour: tests/integration does that.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.lvs.cluster.plugins.module_utils import ipvs_netlink
from ansible_collections.lvs.cluster.plugins.modules import ipvs_info, ipvs_service

from conftest import FIXTURES, fixture_text

with open(os.path.join(FIXTURES, 'ipvs_service.yml')) as handle:
    CASES = yaml.safe_load(handle)


class Exit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


class FakeIpvsadm:
    """Answers the module's ipvsadm calls from captured text; the table changes after `-R`."""

    def __init__(self, case):
        self.states = [case.get('before', ''), case.get('after', case.get('before', ''))]
        self.listings = [case.get('thresholds_before', ''), case.get('thresholds_after', '')]
        self.restore = case.get('restore', {})
        self.applied = False
        self.calls = []
        self.batch = None
        self.extra = {tuple(k.split()): v for k, v in case.get('outputs', {}).items()}

    def __call__(self, argv, data=None, **kwargs):
        args = tuple(argv[1:])
        self.calls.append(' '.join(args))
        assert kwargs.get('environ_update', {}).get('LANG') == 'C'
        state = 1 if self.applied else 0
        if args in self.extra:
            return self.extra[args]['rc'], self.extra[args].get('stdout', ''), self.extra[args].get('stderr', '')
        if args == ('-S', '-n'):
            return 0, self.states[state], ''
        if args == ('-L', '-n', '--thresholds'):
            return 0, self.listings[state], ''
        if args == ('-R',):
            self.applied = True
            self.batch = data
            return self.restore.get('rc', 0), '', self.restore.get('stderr', '')
        raise AssertionError('unexpected ipvsadm call: %s' % ' '.join(args))


def run_module(main, args, fake, monkeypatch, check_mode=False, diff=False, ipvsadm_installed=True):
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    warnings = []

    def exit_json(self, **result):
        raise Exit(result)

    def fail_json(self, msg, **result):
        raise Exit(dict(result, failed=True, msg=msg))

    def no_netlink(**kwargs):
        raise ipvs_netlink.IpvsUnavailable('no IPVS over netlink in the unit tests: ipvsadm is the fake')

    # the kernel's netlink answer is none here: the modules read through the fake ipvsadm
    monkeypatch.setattr(ipvs_netlink, 'dump', no_netlink)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, argv, **kw: fake(argv, **kw))
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, warning: warnings.append(warning))
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                        lambda self, name, *a, **kw: '/usr/sbin/' + name if ipvsadm_installed else None)
    with patch_module_args(args), pytest.raises(Exit) as exc:
        main()
    return dict(exc.value.result, _warnings=warnings)


@pytest.mark.parametrize('case', CASES, ids=[case['name'] for case in CASES])
def test_ipvs_service(case, monkeypatch):
    fake = FakeIpvsadm(case)
    result = run_module(ipvs_service.main, case['args'], fake, monkeypatch, case.get('check_mode', False),
                        diff='diff_after' in case['expect'], ipvsadm_installed=case.get('ipvsadm_installed', True))
    expect = case['expect']
    assert result.get('failed', False) == expect.get('failed', False), json.dumps(result, indent=1)
    for key in ('changed', 'commands', 'applied', 'not_applied', 'field', 'table_assumed_empty'):
        if key in expect:
            assert result.get(key) == expect[key], key
    if 'warnings' in expect:
        assert result['_warnings'] == expect['warnings']
    if 'msg' in expect:
        assert expect['msg'] in result['msg']
    if 'calls' in expect:
        assert fake.calls == expect['calls']
    if expect.get('commands') and not case.get('check_mode') and not expect.get('failed'):
        assert fake.batch == '\n'.join(expect['commands']) + '\n'
    if 'diff_after' in expect:
        assert result['diff']['after'] == expect['diff_after']
    else:
        assert 'diff' not in result, 'a diff is computed only in diff mode'


def test_ipvs_info_returns_the_table_with_counters(monkeypatch):
    fake = FakeIpvsadm({'before': fixture_text('sn_mixed.txt'),
                        'outputs': {'-L -n --exact --stats': {'rc': 0, 'stdout': fixture_text('ln_stats_mixed.txt')},
                                    '-L -n --exact': {'rc': 0, 'stdout': fixture_text('ln_mixed.txt')},
                                    '-L -n --thresholds': {'rc': 0, 'stdout': fixture_text('ln_mixed.txt')}}})
    result = run_module(ipvs_info.main, {}, fake, monkeypatch)
    assert result['changed'] is False
    assert len(result['services']) == 8
    web = next(s for s in result['services'] if s['address'] == '198.18.0.144' and s['port'] == 80)
    assert web['stats'] == dict(connections=0, packets_in=0, packets_out=0, bytes_in=0, bytes_out=0)
    assert [rs['address'] for rs in web['real_servers']] == ['198.18.1.132', '198.18.1.133']
    assert web['real_servers'][0]['active_connections'] == 0
    assert fake.calls == ['-S -n', '-L -n --thresholds', '-L -n --exact --stats', '-L -n --exact']


def test_ipvs_info_reads_nothing_more_on_an_empty_table(monkeypatch):
    fake = FakeIpvsadm({'before': ''})
    result = run_module(ipvs_info.main, {}, fake, monkeypatch)
    assert result['services'] == [] and fake.calls == ['-S -n']
