"""Tests of tests/lab/run, the lab runner: each test boots the lab kernel (a few seconds).

Run on the host, as root:  .venv/bin/pytest tests/lab/run_test.py
"""

import os
import re
import shutil
import subprocess
import time
import uuid

import pytest
from conftest import at_once

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUN = os.path.join(HERE, 'run')
SCHEDULERS = 'rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh'.split()


def lab(*argv, options=(), cwd=REPO, env=None, timeout=600):
    """Run argv in the lab; return the CompletedProcess (text, stdout and stderr apart)."""
    cmd = [RUN] + list(options) + ['--'] + list(argv)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_exit_status_and_streams():
    result = lab('sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 3')
    assert result.returncode == 3
    assert result.stdout == 'to-stdout\n'
    assert result.stderr == 'to-stderr\n'


def test_missing_command_exits_127():
    result = lab('no-such-command-here')
    assert result.returncode == 127
    assert 'not found' in result.stderr


def test_lab_that_dies_exits_125():
    result = lab('halt', '-f', '-f')
    assert result.returncode == 125
    assert 'ended before the command did' in result.stderr
    # the runner keeps that lab's run directory for a look; this one is not needed
    match = re.search(r'\((/\S+)/uml\.log\)', result.stderr)
    assert match, result.stderr
    assert match.group(1).startswith(os.path.join(REPO, '.lab', 'run', ''))
    shutil.rmtree(match.group(1))


def test_timeout_exits_124():
    started = time.monotonic()
    result = lab('sleep', '600', options=('--timeout', '3'))
    assert result.returncode == 124
    assert 'timed out' in result.stderr
    assert time.monotonic() - started < 60


def test_host_stays_clean_except_binds(tmp_path):
    """Writes outside the binds land in the lab's memory; a bind reaches the host."""
    tag = uuid.uuid4().hex
    bound = tmp_path / 'bound'
    bound.mkdir()
    outside = [f'/etc/lab-escape-{tag}', f'/root/lab-escape-{tag}', f'/tmp/lab-escape-{tag}',
               os.path.join(REPO, f'lab-escape-{tag}')]
    script = ' && '.join(
        [f'echo x > {path} && test -s {path}' for path in outside]
        + [f'echo kept > {bound}/{tag}', 'test ! -e /.oldroot', 'test ! -e /run/o']
    )
    result = lab('sh', '-c', script, options=('--bind', str(bound)))
    assert result.returncode == 0, result.stderr
    for path in outside:
        assert not os.path.exists(path), f'{path} escaped from the lab to the host'
    assert (bound / tag).read_text() == 'kept\n'
    assert not os.path.exists('/etc/containers/containers.conf.d/50-lab.conf')


def test_host_is_read_only_even_to_hostfs_mounted_in_the_lab(tmp_path):
    """A command in the lab that mounts the host's / through hostfs still cannot write it."""
    tag = uuid.uuid4().hex
    script = (f'mkdir -p /mnt/host && mount -t hostfs -o / hostfs /mnt/host && '
              f'! touch /mnt/host/etc/lab-escape-{tag} && ! touch /mnt/host/tmp/lab-escape-{tag} && '
              f'touch /mnt/host{tmp_path}/through-bind')
    result = lab('sh', '-c', script, options=('--bind', str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert 'Read-only file system' in result.stderr
    assert not os.path.exists(f'/etc/lab-escape-{tag}')
    assert not os.path.exists(f'/tmp/lab-escape-{tag}')
    assert (tmp_path / 'through-bind').exists()


def test_cwd_environment_and_system(tmp_path):
    env = dict(os.environ, LAB_TEST_VALUE='a b\tc\'d"e$f', TERM='xterm', SSH_AUTH_SOCK='/x')
    (tmp_path / 'marker').write_text('here\n')
    result = lab('sh', '-c', 'pwd; cat marker; printf "%s\\n" "$LAB_TEST_VALUE"; '
                 'echo "HOME=$HOME TERM=${TERM-unset} SSH=${SSH_AUTH_SOCK-unset} LAB=$LVS_LAB"; '
                 'hostname; ip -o link show lo; id -u',
                 cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(tmp_path)
    assert lines[1] == 'here'
    assert lines[2] == env['LAB_TEST_VALUE']
    assert lines[3] == 'HOME=/root TERM=unset SSH=unset LAB=1'
    assert lines[4] == 'lab'
    assert 'UP' in lines[5]
    assert lines[6] == '0'


def test_ipvs_iptables_and_mounts():
    script = '''
        set -e
        i=0
        for s in rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh; do
            i=$((i + 1))
            ipvsadm -A -t 198.18.0.1:$((1000 + i)) -s $s
        done
        ipvsadm -a -t 198.18.0.1:1001 -r 198.19.0.11:80 -m
        ipvsadm -Sn
        iptables -t nat -A POSTROUTING -s 198.19.0.0/24 -j MASQUERADE
        iptables -t nat -S POSTROUTING
        for m in ip_vs veth bridge ipip iptable_nat iptable_filter nf_conntrack xt_MASQUERADE overlay; do
            grep -q "^$m " /proc/modules || { echo "module $m not loaded"; exit 1; }
        done
        awk '{print $2, $3}' /proc/mounts
        touch /dev/shm/x /run/x /tmp/x
    '''
    result = lab('bash', '-c', script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '-a -t 198.18.0.1:1001 -r 198.19.0.11:80 -m -w 1' in result.stdout
    for i, scheduler in enumerate(SCHEDULERS, 1001):
        assert f'-A -t 198.18.0.1:{i} -s {scheduler}' in result.stdout
    assert '-A POSTROUTING -s 198.19.0.0/24 -j MASQUERADE' in result.stdout
    mounts = dict(line.split(' ', 1) for line in result.stdout.splitlines() if line.startswith('/'))
    assert mounts['/'] == 'overlay'
    for path, fstype in {'/proc': 'proc', '/sys': 'sysfs', '/dev': 'devtmpfs', '/dev/shm': 'tmpfs',
                         '/run': 'tmpfs', '/sys/fs/cgroup': 'cgroup2', '/usr/lib/modules': 'hostfs',
                         os.path.join(REPO, '.lab'): 'hostfs'}.items():
        assert mounts.get(path) == fstype, (path, mounts)


def test_venv_python_and_ansible():
    result = lab('.venv/bin/ansible', '-i', 'localhost,', '-c', 'local',
                 '-e', 'ansible_python_interpreter=/usr/bin/python3', '-m', 'setup',
                 '-a', 'filter=ansible_hostname', 'localhost')
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'ansible_hostname: lab' in result.stdout


def test_disk_keeps_files_and_podman_runs(tmp_path):
    disk = tmp_path / 'containers.img'
    first = lab('sh', '-c', 'echo persisted > /var/lib/containers/marker && '
                'podman info --format "{{.Host.CgroupManager}} {{.Host.EventLogger}} '
                '{{.Store.GraphDriverName}} {{.Store.GraphRoot}}"',
                options=('--disk', f'{disk}:/var/lib/containers'))
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ['cgroupfs', 'file', 'overlay', '/var/lib/containers/storage']
    assert disk.stat().st_size == 6 * 1024 ** 3
    second = lab('cat', '/var/lib/containers/marker',
                 options=('--disk', f'{disk}:/var/lib/containers'))
    assert second.returncode == 0, second.stderr
    assert second.stdout == 'persisted\n'


def test_two_labs_at_once():
    results = at_once(lambda name: lab('sh', '-c', f'sleep 2; echo {name}'), ('first', 'second'))
    for name, result in results.items():
        assert result.returncode == 0, result.stderr
        assert result.stdout == f'{name}\n'


def test_threads_keep_their_own_vector_registers(tmp_path):
    """On hosts with AMX the lab kernel runs only with uml-xstate.so, which rewrites how it sets a
    process's vector registers: threads taking turns on the lab's CPU must each keep their own
    (xstate_check.c: a pattern per thread in zmm31, checked while they are switched)."""
    with open('/proc/cpuinfo', encoding='ascii') as cpuinfo:
        if ' avx512f' not in cpuinfo.read():
            pytest.skip('this CPU has no AVX-512')
    program = tmp_path / 'xstate_check'
    subprocess.run(['gcc', '-O1', '-pthread', '-o', str(program), os.path.join(HERE, 'xstate_check.c')],
                   check=True)
    result = lab(str(program), options=('--bind', str(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == 'ok 4000\n'
