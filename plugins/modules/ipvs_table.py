#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: ipvs_table
short_description: Manage a whole list of IPVS virtual services in one run
version_added: 0.1.0
description:
  - Makes the kernel's IPVS table hold the virtual services of the cluster model's list
    (C(lvs_virtual_services)) with their real servers - one read of the table, one plan, one
    C(ipvsadm -R) batch for all of them, whatever their number.
  - Owns what it makes. It keeps a record of the services it made (O(record_file)); a service the
    record names and the list no longer does is removed (O(remove_unlisted)). A service it did not
    make - made by hand, or by keepalived - is never touched; services another writer owns
    (O(foreign_services)) are also left out of the record and of the rules file.
  - Sets IPVS's connection timeouts (O(timeouts), C(ipvsadm --set)) in the same batch, and writes
    the rules file the distribution restores at boot (O(rules_file)) from the table after the batch,
    so nothing of the table goes through the controller.
  - Every entry is checked before anything changes; bad input anywhere in the list fails naming the
    entry (its index and name) and the field, such as C(virtual_services[36].real_servers[1].port),
    and nothing is touched. C(ipvsadm -R) goes on past a line the kernel refuses and exits with the last line's
    status, so when it complains the table is read back and the failure says, per service and per
    real server, what the kernel shows as applied and what not.
  - The table is read with one netlink dump (services, flags, persistence, real servers,
    thresholds, timeouts) when the kernel's IPVS answers it, else with C(ipvsadm -S -n),
    C(ipvsadm -L -n --thresholds) and C(ipvsadm -L -n --timeout).
  - M(lvs.cluster.ipvs_service) manages one service, with no record.
author:
  - lvs.cluster maintainers (@lvs-cluster)
requirements:
  - ipvsadm 1.28 or later on the managed host
  - a kernel with IPVS (the C(ip_vs) module)
attributes:
  check_mode:
    support: full
    description:
      - Reports every change the run would make (the batch, the record, the rules file) and makes none.
      - Without ipvsadm installed it takes the table as empty, warns, and returns RV(table_assumed_empty).
  diff_mode:
    support: full
    description:
      - One diff per service that changes (its C(ipvsadm -S -n) lines before and after), one for the
        timeouts, one for each file that changes (the rules file, the record).
  platform:
    support: full
    platforms: posix
    description: Linux only, the kernel's IPVS.
options:
  virtual_services:
    description:
      - The virtual services, each with the options of M(lvs.cluster.ipvs_service) for one service
        (C(state), C(protocol), C(address), C(port), C(fwmark), C(family), C(scheduler),
        C(scheduler_flags), C(persistent), C(persistent_netmask), C(persistence_engine),
        C(one_packet), C(forwarding), C(real_servers)), checked by that module's own rules, and an
        optional C(name) that messages and diffs use.
      - The fields keepalived reads (C(health_check), C(sorry_server), C(quorum), C(inhibit)) may be
        there and are ignored, so the cluster model's list is given as it is.
      - An entry with C(state=absent) is deleted if the kernel has it.
    type: list
    elements: dict
    default: []
  foreign_services:
    description:
      - Services another writer owns (keepalived, with the director role's failover). Each names one
        service (C(protocol), C(address), C(port), or C(fwmark) and C(family); a whole entry of the
        model does). They are never changed, dropped from the record (handed over) and left out of
        the rules file (their writer restores them itself).
    type: list
    elements: dict
    default: []
  forwarding:
    description:
      - The forwarding method of the services and real servers that set none.
    type: str
    choices: [dr, nat, tunnel]
    default: dr
  purge_real_servers:
    description:
      - Remove the real servers of a listed service that its C(real_servers) does not list.
    type: bool
    default: true
  drain:
    description:
      - Instead of deleting a real server (C(state=absent) or purged), set its weight to V(0) so its
        existing connections finish.
    type: bool
    default: false
  remove_unlisted:
    description:
      - Remove the services the record names and the list no longer does. With V(false) they stay,
        and stay in the record, to go once it is V(true) again.
    type: bool
    default: true
  record_file:
    description:
      - Where the module records the services it made (a JSON list of the options naming each).
    type: path
    default: /var/lib/lvs-cluster/director-services.json
  timeouts:
    description:
      - IPVS's connection timeouts in seconds (C(ipvsadm --set)); V(0) keeps the kernel's. Omit to
        leave the timeouts alone. Also written to O(rules_file), whose restore sets them at boot.
    type: dict
    suboptions:
      tcp:
        description: Established TCP connections.
        type: int
        default: 0
      tcpfin:
        description: TCP connections after a FIN.
        type: int
        default: 0
      udp:
        description: UDP.
        type: int
        default: 0
  rules_file:
    description:
      - Write the table after the batch here, as C(ipvsadm -R) restores it at boot (C(/etc/ipvsadm.rules)
        on Debian, C(/etc/sysconfig/ipvsadm) on RedHat) - every service but the O(foreign_services),
        in a stable order, then the O(timeouts). Omit to write none.
    type: path
  rules_header:
    description:
      - The first lines of O(rules_file), such as the distribution's own save writes.
    type: str
    default: ''
notes:
  - ipvsadm's save format keeps a tunnel real server's tunnel type; this module manages only the
    default (ipip) and leaves other tunnel options as they are when it does not edit that server.
seealso:
  - module: lvs.cluster.ipvs_service
  - module: lvs.cluster.ipvs_info
  - name: ipvsadm(8)
    description: The command this module drives.
    link: https://man7.org/linux/man-pages/man8/ipvsadm.8.html
'''

EXAMPLES = r'''
- name: The cluster's services, as inventory lists them, in one run
  lvs.cluster.ipvs_table:
    virtual_services: "{{ lvs_virtual_services }}"
    forwarding: nat
    timeouts: {tcpfin: 30}
    rules_file: /etc/ipvsadm.rules
    rules_header: "# ipvsadm.rules\n"

- name: Two services written out
  lvs.cluster.ipvs_table:
    virtual_services:
      - name: web
        address: 198.18.0.144
        port: 80
        scheduler: wlc
        persistent: 3
        forwarding: nat
        real_servers:
          - {address: 198.18.1.132, port: 80}
          - {address: 198.18.1.133, port: 80}
      - name: marked
        fwmark: 7
        scheduler: sh
        scheduler_flags: [sh-port]
        real_servers:
          - {address: 198.18.1.132}

- name: keepalived writes these services; this run removes what it made before and keeps the rules file
  lvs.cluster.ipvs_table:
    virtual_services: []
    foreign_services: "{{ lvs_virtual_services }}"
    rules_file: /etc/ipvsadm.rules
'''

RETURN = r'''
commands:
  description: The C(ipvsadm -R) lines run (or, in check mode, that would run), in order.
  returned: always
  type: list
  elements: str
  sample: ["-A -t 198.18.0.144:80 -s wlc -p 3", "-a -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 1"]
services:
  description: Each service that changes, with its lines of RV(commands).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "web", "service": "tcp 198.18.0.144:80", "commands": ["-e -t 198.18.0.144:80 -r 198.18.1.132:80 -m -w 2"]}]
removed:
  description: The services removed because the record names them and the list no longer does.
  returned: always
  type: list
  elements: str
  sample: ["tcp 198.18.0.144:25"]
diff:
  description: One entry per service that changes, the timeouts and each file that changes.
  returned: in diff mode
  type: list
  elements: dict
  sample: [{"before_header": "web (tcp 198.18.0.144:80) (before)", "before": "", "after": "-A -t 198.18.0.144:80 -s wlc\n"}]
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
  sample: ["-A -t 198.18.0.145:80 -s nosuch"]
errors:
  description: Every problem of the input, each naming its entry and field.
  returned: on bad input
  type: list
  elements: str
  sample: ["virtual_services[36] (web37).real_servers[1].port: port 0 is out of range 1-65535"]
table_assumed_empty:
  description:
    - V(true) when, in check mode, ipvsadm is not installed (a fresh director checked before its first
      run). The table was then taken as empty.
  returned: in check mode, when ipvsadm is not installed
  type: bool
  sample: true
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lvs.cluster.plugins.module_utils.ipvs_table import ipvs_table_spec
from ansible_collections.lvs.cluster.plugins.module_utils.ipvsadm import ensure_table


def main():
    ensure_table(AnsibleModule(supports_check_mode=True, **ipvs_table_spec()))


if __name__ == '__main__':
    main()
