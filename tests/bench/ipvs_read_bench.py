"""Benchmark reading the IPVS table, inside the lab kernel (tests/bench/run --read).

For each table (1,000 services x 4 real servers, 1 service x 5,000 real servers by default), in this one
Python process, best of BENCH_RUNS rounds, the three ways interleaved in each round:
- raw `ipvsadm -Sn` (forked from here, output discarded);
- what the modules do today: `ipvsadm -Sn` and `ipvsadm -Ln --thresholds`, read and parsed by ipvs.py;
- the netlink read (ipvs_netlink.read_table(): one in-process dump), and dump(counters=True).
Then the same again once ansible.module_utils.basic is imported, as in a module: forking from a bigger
Python costs more, the in-process read does not fork. And once per fresh Python (as a module runs, reading
once with a cold heap), the read alone timed inside it. Prints tables; ratios are netlink / other.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'playbooks', 'collections'))

from ansible_collections.lvs.cluster.plugins.module_utils import ipvs, ipvs_netlink  # noqa: E402

ENV = dict(os.environ, LANG='C', LC_ALL='C')


def shapes(spec):
    """'1000x4' -> (1000, 4)."""
    services, _sep, dests = spec.partition('x')
    return int(services), int(dests or 1)


def batch(services, dests):
    """An ipvsadm -R batch: VIPs in 198.18.0.0/16, real servers in 198.19.0.0/16 (benchmarking ranges)."""
    lines = []
    for s in range(services):
        vip = '198.18.%d.%d:80' % (s // 250, s % 250 + 1)
        lines.append('-A -t %s -s wlc -p 3' % vip)
        lines += ['-a -t %s -r 198.19.%d.%d:80 -m -w 1' % (vip, d // 250, d % 250 + 1) for d in range(dests)]
    return '\n'.join(lines) + '\n'


def ipvsadm(*args):
    proc = subprocess.run(['ipvsadm'] + list(args), capture_output=True, text=True, env=ENV, check=False)
    if proc.returncode != 0:
        sys.exit('ipvsadm %s failed (%d): %s' % (' '.join(args), proc.returncode, proc.stderr))
    return proc.stdout


def raw_save():
    ipvsadm('-S', '-n')


def today():
    """ipvsadm.Ipvsadm.read_table's way: -Sn, and -Ln --thresholds when there are real servers."""
    table = ipvs.parse_save(ipvsadm('-S', '-n'))
    if any(entry[1] for entry in table.values()):
        ipvs.apply_thresholds(table, ipvs.parse_listing(ipvsadm('-L', '-n', '--thresholds')))
    return table


def netlink():
    return ipvs_netlink.read_table()


def netlink_counters():
    return ipvs_netlink.dump(counters=True)


WAYS = {'raw': raw_save, 'today': today, 'netlink': netlink}


def fresh(way):
    """Seconds of one read in a new Python that imported what a module imports."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), '--once', way], capture_output=True,
                          text=True, check=True)
    return float(proc.stdout)


def best_of(runs, functions):
    """{name: best seconds}, the functions taking turns in each round."""
    times = {name: [] for name in functions}
    for _round in range(runs):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def load(services, dests):
    subprocess.run(['ipvsadm', '-C'], check=True)
    subprocess.run(['ipvsadm', '-R'], input=batch(services, dests), text=True, check=True)
    assert netlink() == today(), 'the netlink read differs from ipvsadm\'s'


def main():
    if sys.argv[1:2] == ['--once']:
        import ansible.module_utils.basic  # noqa: F401
        start = time.perf_counter()
        WAYS[sys.argv[2]]()
        print(time.perf_counter() - start)
        return
    specs = sys.argv[1:] or ['1000x4', '1x5000']
    runs = int(os.environ.get('BENCH_RUNS', '5'))
    small, big, cold = {}, {}, {}
    for spec in specs:
        load(*shapes(spec))
        small[spec] = best_of(runs, {'raw': raw_save, 'today': today, 'netlink': netlink,
                                     'counters': netlink_counters})
    import ansible.module_utils.basic  # noqa: F401  (a module's Python: forks cost more from it)
    for spec in specs:
        load(*shapes(spec))
        big[spec] = best_of(runs, WAYS)
        cold[spec] = {way: min(fresh(way) for _run in range(runs)) for way in WAYS}
    subprocess.run(['ipvsadm', '-C'], check=True)

    print('Reading the IPVS table, lab kernel, one Python process, best of %d (seconds)' % runs)
    print('%-9s %12s %12s %12s %14s %12s %14s' % ('table', 'ipvsadm -Sn', 'today', 'netlink', 'netlink+ctrs',
                                                  'nl/ipvsadm', 'nl/today'))
    for spec in specs:
        t = small[spec]
        print('%-9s %12.3f %12.3f %12.3f %14.3f %12.2f %14.2f' % (
            spec, t['raw'], t['today'], t['netlink'], t['counters'], t['netlink'] / t['raw'], t['netlink'] / t['today']))
    print()
    print('The same from a Python with ansible.module_utils.basic imported (as a module runs)')
    print('%-9s %12s %12s %12s %12s %14s' % ('table', 'ipvsadm -Sn', 'today', 'netlink', 'nl/ipvsadm', 'nl/today'))
    for spec in specs:
        t = big[spec]
        print('%-9s %12.3f %12.3f %12.3f %12.2f %14.2f' % (
            spec, t['raw'], t['today'], t['netlink'], t['netlink'] / t['raw'], t['netlink'] / t['today']))
    print()
    print('A fresh Python per read (ansible.module_utils.basic imported, cold heap), the read alone')
    print('%-9s %12s %12s %12s %12s %14s' % ('table', 'ipvsadm -Sn', 'today', 'netlink', 'nl/ipvsadm', 'nl/today'))
    for spec in specs:
        t = cold[spec]
        print('%-9s %12.3f %12.3f %12.3f %12.2f %14.2f' % (
            spec, t['raw'], t['today'], t['netlink'], t['netlink'] / t['raw'], t['netlink'] / t['today']))
    print()
    print('today = ipvsadm -Sn + ipvsadm -Ln --thresholds, parsed by ipvs.py; netlink = ipvs_netlink.read_table();')
    print('netlink+ctrs = ipvs_netlink.dump(counters=True) (timeouts and counters too)')


if __name__ == '__main__':
    main()
