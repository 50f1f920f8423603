"""The roles run on the controller: tasks listed per tag, persist.yml in check mode without ipvsadm.

These run ansible-playbook (a few seconds each) against no managed host.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO

BIN = os.path.dirname(sys.executable)


def playbook(*args, env=None):
    environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), NO_COLOR='1',
                   ANSIBLE_DUPLICATE_YAML_DICT_KEY='ignore', **(env or {}))
    return subprocess.run([os.path.join(BIN, 'ansible-playbook')] + list(args), cwd=REPO, env=environ,
                          capture_output=True, text=True, check=False)


def test_persist_in_check_mode_without_ipvsadm_fails_nothing_and_writes_nothing(tmp_path):
    empty = tmp_path / 'bin'
    empty.mkdir()
    run = playbook('-i', 'localhost,', '--check', 'roles/director/tests/persist_check.yml',
                   '-e', 'ansible_python_interpreter=%s' % sys.executable,
                   env={'LVS_TEST_SCRATCH': str(tmp_path)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'check mode takes the IPVS table as empty' in run.stdout
    assert re.search(r'failed=0 ', run.stdout)
    assert os.listdir(tmp_path) == ['bin']
