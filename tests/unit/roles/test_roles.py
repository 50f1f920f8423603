"""The roles run on the controller: tasks listed per tag, persist.yml in check mode without ipvsadm.

These run ansible-playbook (a few seconds each) against no managed host.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

BIN = os.path.dirname(sys.executable)


def playbook(*args, env=None):
    environ = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), NO_COLOR='1',
                   ANSIBLE_DUPLICATE_YAML_DICT_KEY='ignore', **(env or {}))
    return subprocess.run([os.path.join(BIN, 'ansible-playbook')] + list(args), cwd=REPO, env=environ,
                          capture_output=True, text=True, check=False)


def test_the_ipvs_phase_in_check_mode_without_ipvsadm_shows_the_rules_file_and_writes_nothing(tmp_path):
    empty = tmp_path / 'bin'
    empty.mkdir()
    run = playbook('-i', 'localhost,', '--check', '--diff', 'roles/director/tests/persist_check.yml',
                   '-e', 'ansible_python_interpreter=%s' % sys.executable,
                   env={'LVS_TEST_SCRATCH': str(tmp_path)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'check mode takes the IPVS table as empty' in run.stderr
    # the rules file's diff, which the real run writes: the service, then the timeouts
    assert '+-A -t 198.18.0.144:80 -s wlc\n+-a -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1\n+--set 0 30 0' in run.stdout, run.stdout
    assert re.search(r'localhost +: ok=[0-9]+ +changed=1 .*failed=0 ', run.stdout), run.stdout
    assert os.listdir(tmp_path) == ['bin']


# Each phase tag and the tasks it must run besides those of set_vars.yml and validate.yml (which
# carry every tag): only its own.
BOOT = ['Install lvs-director-net', 'Install lvs-director.service', 'Enable lvs-director.service']
PHASES = {
    'director_install': ['Install ipvsadm, iptables, modprobe and sysctl'],
    'director_modules': ['Load the IPVS modules, now and at boot'],
    'director_sysctl': ["Set the director's kernel settings, now and at boot"],
    'director_firewall': BOOT + ['Put the MASQUERADE rule in place now', 'Show the rule put in place (or, in check mode, that would be)'],
    'director_vip': BOOT + ['Put the VIPs in place now', 'Show the VIPs put in place (or, in check mode, that would be)'],
    'director_ipvs': ['Make the IPVS table follow the inventory'],
    'director_keepalived': ['Install keepalived', "Make keepalived's directory",
                            'Write keepalived.conf (checked by keepalived before it replaces the running one)',
                            "Make the directory of keepalived's unit drop-ins",
                            "Start keepalived after the IPVS table's restore at boot",
                            "Release keepalived's addresses, services and sync daemon whenever it stops, and restart it",
                            'Start keepalived, now and at boot',
                            'Reload keepalived with the new configuration'],
    'director_persist': ['Let the ipvsadm service restore the table at boot', 'Enable the ipvsadm service'],
    'realserver_install': ['Install ip, modprobe and sysctl'],
    'realserver_modules': ['Load the kernel modules, now and at boot'],
    'realserver_sysctl': ["Set the real server's kernel settings, now and at boot"],
    'realserver_network': ['Install lvs-realserver-net', 'Install lvs-realserver.service', 'Enable lvs-realserver.service',
                           'Put the runtime state in place now', 'Show what was put in place (or, in check mode, would be)'],
}
EVERY_PHASE = {
    'director': ['Gather the network facts', 'Check that the OS family is one the role knows',
                 'Load the variables of this OS family', "Check the virtual services and the director's settings"],
    'realserver': ['Gather the network facts', 'Check that the OS family is one the role knows',
                   'Load the variables of this OS family', "Check the real server's settings"],
}


def list_tasks(tmp_path, tags):
    """{role: [task names]} that `ansible-playbook --list-tasks --tags TAGS` lists for both roles."""
    play = tmp_path / 'site.yml'
    play.write_text('- {name: Director, hosts: lvs_directors, gather_facts: false, roles: [lvs.cluster.director]}\n'
                    '- {name: Real servers, hosts: lvs_real_servers, gather_facts: false, roles: [lvs.cluster.realserver]}\n')
    inventory = tmp_path / 'inventory'
    inventory.write_text('[lvs_directors]\nd\n[lvs_real_servers]\nr\n')
    run = playbook('-i', str(inventory), str(play), '--list-tasks', '--tags', tags)
    assert run.returncode == 0, run.stdout + run.stderr
    tasks = {'director': [], 'realserver': []}
    for role, name in re.findall(r'^\s+lvs\.cluster\.(director|realserver) : (.*?)\tTAGS: ', run.stdout, re.M):
        if not name.startswith('Validating arguments against arg spec'):
            tasks[role].append(name)
    return tasks


@pytest.mark.parametrize('tag', sorted(PHASES))
def test_a_phase_tag_runs_only_that_phase(tag, tmp_path):
    role = tag.split('_')[0]
    other = 'realserver' if role == 'director' else 'director'
    assert list_tasks(tmp_path, tag) == {role: EVERY_PHASE[role] + PHASES[tag], other: []}


def test_director_vip_runs_no_module_sysctl_or_nat_task(tmp_path):
    listed = list_tasks(tmp_path, 'director_vip')['director']
    assert not [name for name in listed if re.search(r'module|kernel setting|MASQUERADE|NAT', name, re.I)], listed
    assert 'Put the VIPs in place now' in listed


def test_the_director_role_takes_text_the_module_converts():
    run = playbook('-i', 'roles/director/tests/inventory', 'roles/director/tests/accept.yml')
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_real_server_written_in_capitals_gets_its_vip():
    run = playbook('-i', 'roles/realserver/tests/inventory', 'roles/realserver/tests/address.yml')
    assert run.returncode == 0, run.stdout + run.stderr
