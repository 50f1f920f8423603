"""Benchmark ipvs_service against raw ipvsadm on the same table, inside the lab kernel (tests/bench/run).

For each size: raw `ipvsadm -R` of the whole batch and raw `ipvsadm -Sn`, then the module applying the
same service to an empty table and re-checking it (no change), run as Ansible runs a module: one
Python process with its arguments in a file. Python's own start (with ansible's module_utils
imported) is measured too, since the module pays it on every run and raw ipvsadm never does.
Prints one table; ratios are module / raw in this one run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(REPO, 'plugins', 'modules', 'ipvs_service.py')
VIP = '198.18.0.144'


def real_servers(count):
    # count addresses in 198.19.0.0/16 (benchmarking range), port 80
    return [{'address': '198.19.%d.%d' % (i // 250, i % 250 + 1), 'port': 80, 'weight': 1} for i in range(count)]


def timed(argv, data=None, env=None):
    start = time.perf_counter()
    proc = subprocess.run(argv, input=data, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit('%s failed (%d): %s%s' % (' '.join(argv[:3]), proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return elapsed, proc.stdout


def best(runs, fn):
    return min(fn() for dummy in range(runs))


def main():
    sizes = [int(s) for s in (sys.argv[1:] or ['1000', '5000'])]
    runs = int(os.environ.get('BENCH_RUNS', '3'))
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, 'playbooks', 'collections'), LANG='C')
    python = sys.executable
    subprocess.run(['ipvsadm', '-C'], check=True)
    start_cost = best(runs, lambda: timed([python, '-c', 'import ansible.module_utils.basic'], env=env)[0])
    rows = []
    for size in sizes:
        servers = real_servers(size)
        batch = '-A -t %s:80 -s wlc -p 3\n' % VIP + ''.join(
            '-a -t %s:80 -r %s:80 -m -w 1\n' % (VIP, rs['address']) for rs in servers)
        args = {'ANSIBLE_MODULE_ARGS': {'address': VIP, 'port': 80, 'scheduler': 'wlc', 'persistent': 3,
                                        'forwarding': 'nat', 'real_servers': servers, 'purge_real_servers': True}}
        with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
            json.dump(args, handle)
        module = [python, MODULE, handle.name]

        def raw_apply():
            subprocess.run(['ipvsadm', '-C'], check=True)
            return timed(['ipvsadm', '-R'], data=batch)[0]

        def module_apply():
            subprocess.run(['ipvsadm', '-C'], check=True)
            elapsed, out = timed(module, env=env)
            result = json.loads(out)
            assert result['changed'] and len(result['commands']) == size + 1, result.get('msg')
            return elapsed

        def module_check():
            elapsed, out = timed(module, env=env)
            result = json.loads(out)
            assert not result['changed'], result.get('msg')
            return elapsed

        r_apply = best(runs, raw_apply)
        r_read = best(runs, lambda: timed(['ipvsadm', '-S', '-n'])[0])
        m_apply = best(runs, module_apply)
        m_check = best(runs, module_check)
        os.unlink(handle.name)
        rows.append((size, r_apply, m_apply, r_read, m_check))
    subprocess.run(['ipvsadm', '-C'], check=True)

    print('ipvs_service vs raw ipvsadm, lab kernel, best of %d runs (seconds)' % runs)
    print('python start + ansible module_utils import: %.3f s (paid by every module run)' % start_cost)
    print('%-13s %10s %10s %6s %15s %10s %10s %6s %15s' % (
        'real servers', 'ipvsadm -R', 'module', 'ratio', 'ratio -start', 'ipvsadm -Sn', 're-check', 'ratio', 'ratio -start'))
    for size, r_apply, m_apply, r_read, m_check in rows:
        print('%-13d %10.3f %10.3f %6.2f %15.2f %10.3f %10.3f %6.2f %15.2f' % (
            size, r_apply, m_apply, m_apply / r_apply, (m_apply - start_cost) / r_apply,
            r_read, m_check, m_check / r_read, (m_check - start_cost) / r_read))


if __name__ == '__main__':
    main()
