#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: kernel_settings
short_description: Set a list of kernel settings and load a list of kernel modules, now and at boot, in one run
version_added: 0.1.0
description:
  - Sets every kernel setting (sysctl) of O(sysctls) whose value differs, writing it to
    C(/proc/sys) directly, and keeps the whole list in one sysctl.d file (O(sysctl_file)) that
    systemd-sysctl applies at boot.
  - Loads every kernel module of O(modules) that is neither loaded (C(/proc/modules)) nor built into
    the kernel (C(/sys/module), C(modules.builtin)), with one C(modprobe -a) for all, and keeps the
    whole list in one modules-load.d file (O(modules_file)) that systemd-modules-load reads at boot.
  - One read of the kernel's state and the files, one plan, one report for all of it, whatever the
    number of settings and modules; M(ansible.posix.sysctl) and M(community.general.modprobe) take
    one setting or module a run.
  - Each file is the module's own and holds exactly the list given; what it held before is
    replaced, a setting or module no longer listed leaves it, and an empty list removes the file.
    A setting that leaves the list keeps its value until the next boot; a module stays loaded.
  - Nothing else is touched. Modules are loaded before settings are set, so a setting that a module
    of the same run brings (C(net.ipv4.vs.*) with C(ip_vs)) can be listed with it.
  - Bad input fails before anything changes, naming the field (C(sysctls[2].name)). A setting that
    does not exist on the host fails naming it, before anything changes (unless a module of this run
    is to be loaded first, which may bring it).
author:
  - lvs.cluster maintainers (@lvs-cluster)
requirements:
  - Linux, with C(modprobe) (kmod) to load modules
attributes:
  check_mode:
    support: full
    description:
      - Reports what would be loaded, set and written, and changes nothing.
      - A setting that does not exist yet is reported as to be set, with a warning, since a module that
        an earlier task only said it would load may bring it.
  diff_mode:
    support: full
    description:
      - A list - the modules loaded (those given, before and after), the modules file, the settings that
        differ (C(name = value) lines of their values now and wanted), the sysctl file.
  platform:
    support: full
    platforms: posix
    description: Linux only (C(/proc/sys), C(/proc/modules), systemd's sysctl.d and modules-load.d).
options:
  sysctls:
    description:
      - The kernel settings, in the order they are written to O(sysctl_file).
      - A setting given twice with the same value counts once; with different values it is an error.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The setting's name as sysctl(8) takes it, such as V(net.ipv4.ip_forward). An interface
            name's dots are slashes in it (V(net.ipv4.conf.eth0/100.rp_filter) for C(eth0.100)); a name
            whose first separator is a slash is taken as the path under C(/proc/sys).
          - One setting, no pattern, no white space, no C(=).
        type: str
        required: true
      value:
        description:
          - The value. Compared with the kernel's word by word (the kernel separates words with tabs,
            V(4096 131072 6291456) is the same), numbers as numbers (V(01) is V(1)); a boolean is
            V(1) or V(0).
        type: raw
        required: true
  sysctl_file:
    description:
      - The sysctl.d file that keeps O(sysctls) for the next boot (C(/etc/sysctl.d/NN-NAME.conf)),
        written as a header comment and one C(name = value) line per setting.
      - Omit to set the settings now only.
    type: path
  modules:
    description:
      - The kernel modules to load, by the names C(lsmod) shows (C(ip_vs), C(ipip)); C(-) and C(_) are
        the same. An alias loads, but shows under the module's own name, so every run would load it again.
    type: list
    elements: str
    default: []
  modules_file:
    description:
      - The modules-load.d file that keeps O(modules) for the next boot (C(/etc/modules-load.d/NAME.conf)),
        written as a header comment and one module a line.
      - Omit to load the modules now only.
    type: path
  header:
    description:
      - More comment lines for the top of both files, such as who keeps the list (each line gets
        C(# )). The files always begin with a line naming this module.
    type: str
    default: ''
notes:
  - A setting that cannot be read (write-only, such as C(vm.drop_caches)) is written on every run.
  - systemd-sysctl passes over a setting of the file that no longer exists at boot (a renamed
    interface's) and sets the others.
seealso:
  - module: ansible.posix.sysctl
  - module: community.general.modprobe
  - name: sysctl.d(5)
    description: The format of O(sysctl_file).
    link: https://man7.org/linux/man-pages/man5/sysctl.d.5.html
  - name: modules-load.d(5)
    description: The format of O(modules_file).
    link: https://man7.org/linux/man-pages/man5/modules-load.d.5.html
'''

EXAMPLES = r'''
- name: A director's modules and settings, now and at boot (IPVS's settings come with ip_vs)
  lvs.cluster.kernel_settings:
    modules: [ip_vs, ip_vs_wlc]
    modules_file: /etc/modules-load.d/lvs-director.conf
    sysctls:
      - {name: net.ipv4.ip_forward, value: 1}
      - {name: net.ipv4.conf.all.send_redirects, value: 0}
      - {name: net.ipv4.vs.expire_nodest_conn, value: 1}
    sysctl_file: /etc/sysctl.d/90-lvs-director.conf
    header: Kept by the lvs.cluster.director role

- name: A tunnel real server's ARP and tunl0 settings (tunl0 comes with ipip), a VLAN interface's too
  lvs.cluster.kernel_settings:
    modules: [ipip]
    modules_file: /etc/modules-load.d/lvs-realserver.conf
    sysctls:
      - {name: net.ipv4.conf.all.arp_ignore, value: 1}
      - {name: net.ipv4.conf.all.arp_announce, value: 2}
      - {name: net.ipv4.conf.eth0/100.arp_ignore, value: 1}
      - {name: net.ipv4.conf.tunl0.rp_filter, value: 2}
    sysctl_file: /etc/sysctl.d/90-lvs-realserver.conf

- name: Nothing kept any longer - the file goes (the values stay until the next boot)
  lvs.cluster.kernel_settings:
    sysctls: []
    sysctl_file: /etc/sysctl.d/90-lvs-realserver.conf
'''

RETURN = r'''
modules_loaded:
  description: The modules loaded (in check mode, that would be loaded), in the order given.
  returned: always
  type: list
  elements: str
  sample: [ip_vs, ip_vs_wlc]
sysctls_changed:
  description: The settings set (in check mode, that would be set) because their value differed.
  returned: always
  type: list
  elements: str
  sample: [net.ipv4.ip_forward, net.ipv4.conf.all.send_redirects]
diff:
  description: The modules loaded, the modules file, the settings that differ and the sysctl file, those that change.
  returned: in diff mode
  type: list
  elements: dict
  sample:
    - before_header: kernel settings now (before)
      after_header: kernel settings now (after)
      before: "net.ipv4.ip_forward = 0\n"
      after: "net.ipv4.ip_forward = 1\n"
    - before_header: /etc/sysctl.d/90-lvs-director.conf
      after_header: /etc/sysctl.d/90-lvs-director.conf
      before: ""
      after: "# Kernel settings that systemd-sysctl sets at boot, written by lvs.cluster.kernel_settings (Ansible).\n...\nnet.ipv4.ip_forward = 1\n"
errors:
  description: Every problem of the input, each naming its field.
  returned: on bad input
  type: list
  elements: str
  sample: ["sysctls[2].name: 'net.ipv4 .ip_forward' has white space in it: a setting's name is one word, such as net.ipv4.ip_forward"]
missing:
  description: The settings that do not exist on the host.
  returned: on failure, when a setting does not exist
  type: list
  elements: str
  sample: [net.ipv4.conf.eth9.send_redirects]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lvs.cluster.plugins.module_utils.kernel_settings import ensure_kernel_settings, kernel_settings_spec


def build_module():
    return AnsibleModule(**kernel_settings_spec())


def main():
    ensure_kernel_settings(build_module())


if __name__ == '__main__':
    main()
