"""keepalived.conf of a NAT director with COUNT virtual services (tests/bench/keepalived): rendered
by the collection's filter as the director role renders it on the controller, timed (best of 3),
written twice to DIR: keepalived.conf (every real server at weight 1) and keepalived-2.conf (weight
2, what the reload must bring). Prints the render time."""

from __future__ import annotations

import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'playbooks', 'collections'))

from ansible_collections.lvs.cluster.plugins.filter.ipvs import keepalived_config  # noqa: E402

# The director's network facts: eth0 on the VIPs' network, eth1 on the real servers'.
FACTS = {'interfaces': ['eth0', 'eth1', 'lo'],
         'eth0': {'ipv4': {'address': '198.18.0.141', 'netmask': '255.255.255.0'}},
         'eth1': {'ipv4': {'address': '198.18.1.141', 'netmask': '255.255.255.0'}}}
# its VRRP peer (not started: this director becomes master by itself)
PEER = {'interfaces': ['eth0', 'eth1', 'lo'],
        'eth0': {'ipv4': {'address': '198.18.0.142', 'netmask': '255.255.255.0'}},
        'eth1': {'ipv4': {'address': '198.18.1.142', 'netmask': '255.255.255.0'}}}


def services(count, weight):
    # one VIP, ports 8001...; two NAT real servers each, no health check (keepalived keeps them)
    return [{'name': 's%d' % i, 'address': '198.18.0.144', 'port': 8000 + i, 'scheduler': 'rr',
             'real_servers': [{'address': '198.18.1.132', 'weight': weight}, {'address': '198.18.1.133', 'weight': weight}]}
            for i in range(1, count + 1)]


def render(count, weight):
    config = keepalived_config(services(count, weight), 'nat', facts=FACTS, priority=150, peers={'kbench2': PEER},
                               gateway='198.18.1.130', router_name='kbench')
    if config['errors']:
        sys.exit('; '.join(config['errors']))
    return config['content']


def main():
    count, directory = int(sys.argv[1]), sys.argv[2]
    best = None
    for dummy in range(3):
        start = time.perf_counter()
        content = render(count, 1)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    with open(os.path.join(directory, 'keepalived.conf'), 'w') as handle:
        handle.write(content)
    with open(os.path.join(directory, 'keepalived-2.conf'), 'w') as handle:
        handle.write(render(count, 2))
    print('%.3f' % best)


if __name__ == '__main__':
    main()
