"""Benchmark lvs.cluster.ipvs_table against raw ipvsadm on the same table, inside the lab kernel
(tests/bench/run --table). Not a test: it prints numbers.

For each shape (SERVICESxREAL_SERVERS): raw `ipvsadm -R` of the whole batch to an empty table and
raw `ipvsadm -S -n` of the table, then the module applying the same list to an empty table and
re-checking it (no change), each run as Ansible runs a module: one Python process, its arguments
in a file, the role's options (a record file, the rules file). ansible.builtin.ping run the same
way by the same Python is Python's start with ansible's module_utils and a module's exit: every
module run pays it, raw ipvsadm never does, so the ratios are given with it and without it.
Best of BENCH_RUNS (3) runs each; one run, so the ratios compare.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from ipvs_bench import best, timed   # beside this file: a command timed, the best of some runs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(REPO, 'plugins', 'modules', 'ipvs_table.py')


def services(count, per_service):
    """count services on 198.18.0.0/16 port 80 (one VIP each), per_service NAT real servers each
    on 198.19.0.0/16: the benchmarking range."""
    out = []
    for i in range(count):
        vip = '198.18.%d.%d' % (i // 250, i % 250 + 1)
        out.append({'name': 's%d' % i, 'address': vip, 'port': 80, 'scheduler': 'wlc',
                    'real_servers': [{'address': '198.19.%d.%d' % (j // 250, j % 250 + 1), 'port': 80}
                                     for j in range(per_service)]})
    return out


def batch(listed):
    lines = []
    for service in listed:
        lines.append('-A -t %s:80 -s wlc' % service['address'])
        lines += ['-a -t %s:80 -r %s:80 -m -w 1' % (service['address'], rs['address']) for rs in service['real_servers']]
    return '\n'.join(lines) + '\n'


def args_file(directory, name, args):
    path = os.path.join(directory, name)
    with open(path, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    return path


def main():
    shapes = [tuple(int(n) for n in shape.split('x')) for shape in (sys.argv[1:] or ['1000x4', '1x5000'])]
    runs = int(os.environ.get('BENCH_RUNS', '3'))
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, 'playbooks', 'collections'), LANG='C')
    python = sys.executable
    work = tempfile.mkdtemp(prefix='ipvs-table-bench.')
    record, rules = os.path.join(work, 'record.json'), os.path.join(work, 'ipvsadm.rules')
    subprocess.run(['ipvsadm', '-C'], check=True)
    # as a module (-m): a file run from ansible/modules would put that directory first on sys.path
    ping = [python, '-m', 'ansible.modules.ping', args_file(work, 'ping.json', {})]
    ping_cost = best(runs, lambda: timed(ping, env=env)[0])
    rows = []
    for count, per_service in shapes:
        listed = services(count, per_service)
        text = batch(listed)
        module = [python, MODULE, args_file(work, 'table.json', {
            'virtual_services': listed, 'forwarding': 'nat', 'record_file': record, 'rules_file': rules,
            'rules_header': '# ipvsadm.rules\n'})]

        def raw_apply():
            subprocess.run(['ipvsadm', '-C'], check=True)
            return timed(['ipvsadm', '-R'], data=text)[0]

        def module_apply():
            subprocess.run(['ipvsadm', '-C'], check=True)
            for path in (record, rules):
                if os.path.exists(path):
                    os.unlink(path)
            elapsed, out = timed(module, env=env)
            result = json.loads(out)
            assert result['changed'] and len(result['commands']) == count * (per_service + 1), result.get('msg')
            return elapsed

        def module_check():
            elapsed, out = timed(module, env=env)
            result = json.loads(out)
            assert not result['changed'], result.get('msg') or result['commands'][:3]
            return elapsed

        r_apply = best(runs, raw_apply)
        r_read = best(runs, lambda: timed(['ipvsadm', '-S', '-n'])[0])
        m_apply = best(runs, module_apply)
        m_check = best(runs, module_check)
        rows.append(('%dx%d' % (count, per_service), r_apply, m_apply, r_read, m_check))
    subprocess.run(['ipvsadm', '-C'], check=True)

    print('lvs.cluster.ipvs_table vs raw ipvsadm, lab kernel, best of %d runs (seconds)' % runs)
    print('ansible.builtin.ping, the same way: %.3f s (Python, ansible module_utils, a module\'s exit: '
          'paid by every module run)' % ping_cost)
    print('%-14s %10s %8s %6s %12s %11s %9s %6s %12s' % (
        'services x rs', 'ipvsadm -R', 'module', 'ratio', 'ratio -ping', 'ipvsadm -Sn', 're-check', 'ratio', 'ratio -ping'))
    for shape, r_apply, m_apply, r_read, m_check in rows:
        print('%-14s %10.3f %8.3f %6.2f %12.2f %11.3f %9.3f %6.2f %12.2f' % (
            shape, r_apply, m_apply, m_apply / r_apply, (m_apply - ping_cost) / r_apply,
            r_read, m_check, m_check / r_read, (m_check - ping_cost) / r_read))


if __name__ == '__main__':
    main()
