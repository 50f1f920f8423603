#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: ipvs_service
short_description: Manage one IPVS virtual service and its real servers
version_added: 0.1.0
description:
  - Makes one Linux Virtual Server (IPVS) virtual service and its real servers match the options,
    the way C(ipvsadm -A/-E/-D) and C(ipvsadm -a/-e/-d) would, idempotently.
  - Reads the whole table once (C(ipvsadm -S -n), and C(ipvsadm -L -n --thresholds) when there are
    real servers, because the save format leaves thresholds out), computes the difference, and
    applies it as one C(ipvsadm -R) batch. C(ipvsadm -R) goes on past a line the kernel refuses and exits with
    the last line's status, so when it prints an error or fails the module reads the table back, and what was
    applied is taken from the kernel, not from an exit code.
  - Bad input fails before anything is touched, with a message that names the field.
author:
  - lvs.cluster maintainers (@lvs-cluster)
requirements:
  - ipvsadm 1.28 or later on the managed host
  - a kernel with IPVS (the C(ip_vs) module)
attributes:
  check_mode:
    support: full
    description:
      - Reports the commands it would run and the diff, and runs nothing.
      - Without ipvsadm installed it takes the table as empty, warns, and returns RV(table_assumed_empty).
  diff_mode:
    support: full
    description: The service and its real servers before and after, as C(ipvsadm -S -n) lines.
  platform:
    support: full
    platforms: posix
    description: Linux only, the kernel's IPVS.
options:
  state:
    description:
      - C(present) creates or updates the service; C(absent) deletes it with all its real servers.
    type: str
    choices: [present, absent]
    default: present
  protocol:
    description:
      - The protocol of an address-and-port service. Ignored for an O(fwmark) service.
    type: str
    choices: [tcp, udp, sctp]
    default: tcp
  address:
    description:
      - The virtual IP address (VIP), IPv4 or IPv6. Required with O(port), unless O(fwmark) is given.
    type: str
  port:
    description:
      - The virtual service's port, 1-65535.
    type: int
  fwmark:
    description:
      - A firewall-mark service (C(ipvsadm -f)) instead of an address and a port, 1-4294967295.
    type: int
  family:
    description:
      - The address family of an O(fwmark) service (C(ipvsadm -6) for IPv6).
      - For an address service the family follows the address, and a contradicting value fails.
    type: str
    choices: [ipv4, ipv6]
  scheduler:
    description:
      - The scheduling algorithm; the kernel loads its C(ip_vs_<scheduler>) module on first use.
    type: str
    choices: [rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh]
    default: wlc
  scheduler_flags:
    description:
      - Scheduler flags (C(ipvsadm -b)). C(sh-fallback) and C(sh-port) apply to C(sh);
        C(mh-fallback) and C(mh-port) to C(mh).
    type: list
    elements: str
    choices: [sh-fallback, sh-port, mh-fallback, mh-port]
    default: []
  persistent:
    description:
      - Persistence timeout in seconds (C(ipvsadm -p)); V(0) means the service is not persistent.
    type: int
    default: 0
  persistent_netmask:
    description:
      - Granularity of persistence (C(ipvsadm -M)) - an IPv4 netmask such as V(255.255.255.0), or an
        IPv6 prefix length. Needs O(persistent).
    type: str
  persistence_engine:
    description:
      - Persistence engine (C(ipvsadm --pe)). Needs O(persistent).
    type: str
    choices: [sip]
  one_packet:
    description:
      - One-packet scheduling (C(ipvsadm -o)), for UDP services only.
    type: bool
    default: false
  forwarding:
    description:
      - The forwarding method of the real servers that do not set their own.
      - V(nat) is masquerading (C(-m)), V(dr) direct routing (C(-g), ipvsadm's default), V(tunnel) IP-in-IP (C(-i)).
    type: str
    choices: [nat, dr, tunnel]
    default: dr
  real_servers:
    description:
      - The real servers of this service. Each is known by its address and port.
    type: list
    elements: dict
    default: []
    suboptions:
      address:
        description: The real server's IPv4 or IPv6 address.
        type: str
        required: true
      port:
        description:
          - The real server's port. Defaults to the service's port (V(0) for an O(fwmark) service).
          - Only V(nat) forwarding can map to another port; V(dr) and V(tunnel) always use the service's port.
        type: int
      weight:
        description: Weight, 0-65535. V(0) takes no new connections (drained).
        type: int
        default: 1
      forwarding:
        description: This real server's forwarding method; defaults to the task's O(forwarding).
        type: str
        choices: [nat, dr, tunnel]
      upper_threshold:
        description: Most connections this real server takes (C(ipvsadm -x)); V(0) is no limit.
        type: int
        default: 0
      lower_threshold:
        description: Connections under which a server over its upper threshold takes new ones again (C(ipvsadm -y)).
        type: int
        default: 0
      state:
        description: V(absent) removes this real server (or drains it, with O(drain)).
        type: str
        choices: [present, absent]
        default: present
  purge_real_servers:
    description:
      - Remove the real servers of this service that O(real_servers) does not list, so the table
        follows the list exactly.
    type: bool
    default: false
  drain:
    description:
      - Instead of deleting a real server (O(real_servers[].state=absent) or purged), set its weight to
        V(0) so its existing connections finish. Deleting the whole service still deletes it.
    type: bool
    default: false
notes:
  - ipvsadm's save format keeps a tunnel real server's tunnel type; this module manages only the
    default (ipip) and leaves other tunnel options as they are when it does not edit that server.
seealso:
  - module: lvs.cluster.ipvs_info
  - name: ipvsadm(8)
    description: The command this module drives.
    link: https://man7.org/linux/man-pages/man8/ipvsadm.8.html
'''

EXAMPLES = r'''
- name: A NAT web service on the VIP, two real servers, weighted least-connection, persistence 3 s
  lvs.cluster.ipvs_service:
    address: 198.18.0.144
    port: 80
    scheduler: wlc
    persistent: 3
    forwarding: nat
    real_servers:
      - address: 198.18.1.132
        port: 80
      - address: 198.18.1.133
        port: 80
    purge_real_servers: true

- name: Take rs2 out of rotation, letting its connections finish
  lvs.cluster.ipvs_service:
    address: 198.18.0.144
    port: 80
    scheduler: wlc
    persistent: 3
    forwarding: nat
    real_servers:
      - address: 198.18.1.133
        port: 80
        state: absent
    drain: true

- name: A firewall-mark service with direct routing and source hashing
  lvs.cluster.ipvs_service:
    fwmark: 7
    scheduler: sh
    scheduler_flags: [sh-port]
    forwarding: dr
    real_servers:
      - address: 198.18.1.132

- name: Remove a virtual service
  lvs.cluster.ipvs_service:
    address: 2001:db8::1
    port: 443
    state: absent
'''

RETURN = r'''
commands:
  description: The C(ipvsadm -R) lines run (or, in check mode, that would run), in order.
  returned: always
  type: list
  elements: str
  sample: ["-A -t 198.18.0.144:80 -s wlc -p 3", "-a -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1"]
diff:
  description: The service and its real servers before and after, as C(ipvsadm -S -n) lines.
  returned: in diff mode
  type: dict
  sample:
    before: ""
    after: "-A -t 198.18.0.144:80 -s wlc -p 3\n-a -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1\n"
applied:
  description: When the batch failed part way, the lines the kernel's table shows as done.
  returned: on failure of ipvsadm -R
  type: list
  elements: str
  sample: ["-A -t 198.18.0.144:80 -s wlc"]
not_applied:
  description: When the batch failed part way, the lines still to do.
  returned: on failure of ipvsadm -R
  type: list
  elements: str
  sample: ["-a -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1"]
table_assumed_empty:
  description:
    - V(true) when, in check mode, ipvsadm is not installed (a fresh director checked before its first
      run). The table was then taken as empty, and RV(commands) is what would run on an empty table.
  returned: in check mode, when ipvsadm is not installed
  type: bool
  sample: true
field:
  description: The option that failed validation.
  returned: on bad input
  type: str
  sample: real_servers[1].port
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lvs.cluster.plugins.module_utils.ipvsadm import ensure_service
from ansible_collections.lvs.cluster.plugins.module_utils.model import ipvs_service_spec


def build_module():
    # The one spec of the options (module_utils/model.py): the roles check their input with it too.
    return AnsibleModule(supports_check_mode=True, **ipvs_service_spec())


def main():
    ensure_service(build_module())


if __name__ == '__main__':
    main()
