#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: ipvs_info
short_description: Read the IPVS table, with per-entry counters
version_added: 0.1.0
description:
  - Returns every IPVS virtual service and its real servers as data, in the shape of
    M(lvs.cluster.ipvs_service)'s options, so one can feed the other.
  - With O(counters), adds each entry's counters (C(ipvsadm -L -n --stats --exact)) and each real
    server's active and inactive connections.
author:
  - lvs.cluster maintainers (@lvs-cluster)
requirements:
  - ipvsadm 1.28 or later on the managed host
  - a kernel with IPVS (the C(ip_vs) module)
attributes:
  check_mode:
    support: full
    description: It only reads.
  diff_mode:
    support: none
    description: It changes nothing.
  platform:
    support: full
    platforms: posix
    description: Linux only, the kernel's IPVS.
options:
  counters:
    description:
      - Add per-service and per-real-server counters and connection counts.
    type: bool
    default: true
seealso:
  - module: lvs.cluster.ipvs_service
'''

EXAMPLES = r'''
- name: Read the IPVS table
  lvs.cluster.ipvs_info:
  register: ipvs

- name: Show how many connections each real server got
  ansible.builtin.debug:
    msg: "{{ item.address }}: {{ item.stats.connections }}"
  loop: "{{ ipvs.services | map(attribute='real_servers') | flatten }}"
'''

RETURN = r'''
services:
  description: The virtual services, sorted.
  returned: always
  type: list
  elements: dict
  contains:
    protocol:
      description: tcp, udp or sctp; null for a firewall-mark service.
      type: str
      sample: tcp
    address:
      description: The virtual address; null for a firewall-mark service.
      type: str
      sample: 198.18.0.144
    port:
      description: The virtual port; null for a firewall-mark service.
      type: int
      sample: 80
    fwmark:
      description: The firewall mark, for a firewall-mark service.
      type: int
      sample: null
    family:
      description: ipv4 or ipv6.
      type: str
      sample: ipv4
    scheduler:
      description: The scheduler.
      type: str
      sample: wlc
    scheduler_flags:
      description: Scheduler flags.
      type: list
      elements: str
      sample: []
    persistent:
      description: Persistence timeout in seconds, 0 when not persistent.
      type: int
      sample: 3
    persistent_netmask:
      description: Persistence granularity, when persistent.
      type: str
      sample: 255.255.255.255
    persistence_engine:
      description: Persistence engine, if any.
      type: str
      sample: null
    one_packet:
      description: Whether one-packet scheduling is on.
      type: bool
      sample: false
    stats:
      description: The service's counters (connections, packets_in, packets_out, bytes_in, bytes_out).
      type: dict
      returned: when O(counters=true)
      sample: {connections: 20, packets_in: 120, packets_out: 100, bytes_in: 8000, bytes_out: 9000}
    real_servers:
      description: The real servers, with C(stats), C(active_connections) and C(inactive_connections) when O(counters=true).
      type: list
      elements: dict
      sample:
        - {address: 198.18.1.132, port: 80, forwarding: nat, weight: 1, upper_threshold: 0, lower_threshold: 0,
           active_connections: 0, inactive_connections: 10,
           stats: {connections: 10, packets_in: 60, packets_out: 50, bytes_in: 4000, bytes_out: 4500}}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lvs.cluster.plugins.module_utils.ipvsadm import read_info


def main():
    module = AnsibleModule(
        argument_spec=dict(counters=dict(type='bool', default=True)),
        supports_check_mode=True,
    )
    read_info(module)


if __name__ == '__main__':
    main()
