"""COUNT virtual services for tests/bench/playbook, as extra vars (JSON): the lab's web service first,
then COUNT-1 more on the same VIP (ports 8001...), each with the lab's two NAT real servers."""

from __future__ import annotations

import json
import sys


def main():
    count = int(sys.argv[1])
    real_servers = [{'address': '198.18.1.132'}, {'address': '198.18.1.133'}]
    services = [{'name': 'web', 'protocol': 'tcp', 'address': '198.18.0.144', 'port': 80, 'scheduler': 'wlc', 'persistent': 3,
                 'real_servers': [dict(rs, port=80, weight=1) for rs in real_servers]}]
    services += [{'name': 'svc%d' % i, 'address': '198.18.0.144', 'port': 8000 + i, 'scheduler': 'rr', 'real_servers': real_servers}
                 for i in range(1, count)]
    json.dump({'lvs_virtual_services': services}, sys.stdout)


if __name__ == '__main__':
    main()
