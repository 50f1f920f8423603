"""ipvs_table as data: each case in ipvs_table.yml gives the module's input, what ipvsadm shows
before (and after, for a run that applies), the files before, and what the module must run,
return and leave in the files.

ipvsadm is replaced by its captured output here (the kernel's netlink answer too: none), so these
prove the module's logic, not the kernel's behaviour: tests/integration/targets/ipvs_table does that.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible_collections.lvs.cluster.plugins.modules import ipvs_table

from conftest import FIXTURES
from test_ipvs_service import FakeIpvsadm, run_module

with open(os.path.join(FIXTURES, 'ipvs_table.yml')) as handle:
    CASES = yaml.safe_load(handle)


def _in(tmp, value):
    """value with {tmp} replaced, in strings, lists and dicts."""
    if isinstance(value, str):
        return value.replace('{tmp}', tmp)
    if isinstance(value, list):
        return [_in(tmp, item) for item in value]
    if isinstance(value, dict):
        return dict((key, _in(tmp, item)) for key, item in value.items())
    return value


@pytest.mark.parametrize('case', CASES, ids=[case['name'] for case in CASES])
def test_ipvs_table(case, monkeypatch, tmp_path):
    tmp = str(tmp_path)
    for name, content in (case.get('files') or {}).items():
        (tmp_path / name).write_text(content)
    fake = FakeIpvsadm(case)
    expect = _in(tmp, case['expect'])
    result = run_module(ipvs_table.main, _in(tmp, case['args']), fake, monkeypatch, case.get('check_mode', False),
                        diff='diff_headers' in expect, ipvsadm_installed=case.get('ipvsadm_installed', True))
    assert result.get('failed', False) == expect.get('failed', False), json.dumps(result, indent=1)
    for key in ('changed', 'commands', 'applied', 'not_applied', 'errors', 'removed', 'table_assumed_empty'):
        if key in expect:
            assert result.get(key) == expect[key], key
    if 'msg' in expect:
        assert expect['msg'] in result['msg'], result['msg']
    if 'warnings' in expect:
        assert result['_warnings'] == expect['warnings']
    assert fake.calls == expect['calls']
    if expect.get('commands') and not case.get('check_mode') and not expect.get('failed'):
        assert fake.batch == '\n'.join(expect['commands']) + '\n'
    if 'service_results' in expect:
        assert [dict(name=s['name'], applied=len(s['applied']), not_applied=s['not_applied']) for s in result['services']] \
            == expect['service_results']
    if 'diff_headers' in expect:
        assert [d['before_header'] for d in result['diff']] == expect['diff_headers']
    else:
        assert 'diff' not in result, 'a diff is computed only in diff mode'
    files = dict((name, (tmp_path / name).read_text()) for name in sorted(os.listdir(tmp)))
    wanted = dict(case.get('files') or {})
    wanted.update(expect['files'])
    assert files == wanted
