# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talk to ipvsadm for the modules: read the table, apply one batch, and check what the batch did.

The modules stay thin: `ensure_service` is all of ipvs_service, `read_info` all of ipvs_info.
"""

from __future__ import annotations

from ansible_collections.lvs.cluster.plugins.module_utils import ipvs

_NO_IPVS_HINTS = ("Can't initialize ipvs", 'Protocol not available', 'IP Virtual Server is built in the kernel')


class Ipvsadm:
    """ipvsadm run as argv lists with LANG=C, failing the module with a message that says what to do."""

    def __init__(self, module, missing_ok=False):
        self.module = module
        self.path = module.get_bin_path('ipvsadm')
        if not self.path and not missing_ok:
            module.fail_json(msg='ipvsadm was not found on PATH: install the ipvsadm package '
                                 '(the lvs.cluster.director role does)')

    def run(self, args, data=None):
        return self.module.run_command([self.path] + args, data=data, binary_data=data is not None,
                                       environ_update={'LANG': 'C', 'LC_ALL': 'C'})

    def fail(self, what, rc, out, err, **extra):
        if any(hint in err for hint in _NO_IPVS_HINTS):
            msg = ('IPVS is not available in this kernel: load the ip_vs module (modprobe ip_vs) '
                   'or use a kernel built with IP_VS')
        else:
            msg = '%s failed: %s' % (what, (err or out).strip())
        self.module.fail_json(msg=msg, rc=rc, stdout=out, stderr=err, **extra)

    def read_table(self):
        """The whole table in one read: `ipvsadm -Sn`, plus the thresholds that -S leaves out."""
        rc, out, err = self.run(['-S', '-n'])
        if rc != 0:
            self.fail('ipvsadm -Sn', rc, out, err)
        table = self._parse(ipvs.parse_save, out, 'ipvsadm -Sn')
        if any(entry[1] for entry in table.values()):
            rc, listing, err = self.run(['-L', '-n', '--thresholds'])
            if rc != 0:
                self.fail('ipvsadm -Ln --thresholds', rc, listing, err)
            ipvs.apply_thresholds(table, self._parse(ipvs.parse_listing, listing, 'ipvsadm -Ln --thresholds'))
        return table

    def read_listing(self, *flags):
        rc, out, err = self.run(['-L', '-n', '--exact'] + list(flags))
        if rc != 0:
            self.fail('ipvsadm -Ln', rc, out, err)
        return self._parse(ipvs.parse_listing, out, 'ipvsadm -Ln')

    def _parse(self, parser, text, what):
        try:
            return parser(text)
        except (ipvs.IpvsError, ValueError) as exc:
            self.module.fail_json(msg='cannot read the output of %s: %s' % (what, exc), stdout=text)

    def restore(self, commands):
        return self.run(['-R'], data='\n'.join(commands) + '\n')


def ensure_service(module):
    """Make one virtual service and its real servers what the module's options say."""
    params = module.params
    try:
        service, dests = ipvs.desired_service(params)
    except ipvs.ValidationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)

    # In check mode on a host where ipvsadm is not installed yet (a first run of the director role
    # with --check, whose install task only said it would install it), the table is taken as empty
    # and the result says so: what would run is then the whole service.
    ipvsadm = Ipvsadm(module, missing_ok=module.check_mode)
    if ipvsadm.path:
        table = ipvsadm.read_table()
    else:
        table = {}
        module.warn('ipvsadm is not installed: check mode takes the IPVS table as empty')
    options = dict(state=params['state'], purge=params['purge_real_servers'], drain=params['drain'])
    commands, after = ipvs.plan(table, service, dests, **options)
    result = dict(changed=bool(commands), commands=commands)
    if not ipvsadm.path:
        result['table_assumed_empty'] = True
    if module._diff:
        name = ipvs.describe_key(service.key)
        result['diff'] = dict(before=ipvs.render_entry(*table.get(service.key, (None, {}))),
                              after=ipvs.render_entry(*after),
                              before_header='%s (before)' % name, after_header='%s (after)' % name)

    if commands and not module.check_mode:
        rc, out, err = ipvsadm.restore(commands)
        # ipvsadm -R prints an error for each line the kernel refuses, goes on with the next, and exits
        # with the last line's status. A clean batch is taken at its word; otherwise what it did is
        # read back from the kernel, not inferred from the exit code.
        if rc != 0 or err.strip():
            remaining = ipvs.plan(ipvsadm.read_table(), service, dests, **options)[0]
            if remaining:
                applied = [c for c in commands if c not in remaining]
                ipvsadm.fail('ipvsadm -R (%d of %d changes applied; not applied: %s)'
                             % (len(applied), len(commands), '; '.join(remaining)),
                             rc, out, err, applied=applied, not_applied=remaining, commands=commands)
            module.warn('ipvsadm -R said: %s' % err.strip())
    module.exit_json(**result)


_STATS = ('connections', 'packets_in', 'packets_out', 'bytes_in', 'bytes_out')


def read_info(module):
    """The whole table as data, with per-entry counters when asked."""
    ipvsadm = Ipvsadm(module)
    table = ipvsadm.read_table()
    services = []
    if module.params['counters'] and table:
        stats = ipvsadm.read_listing('--stats')
        conns = ipvsadm.read_listing()
    for key, (service, dests) in sorted(table.items(), key=lambda item: ipvs.describe_key(item[0])):
        data = ipvs.service_to_dict(service, dests)
        if module.params['counters']:
            numbers, dest_numbers = stats.get(key, ([], {}))
            data['stats'] = dict(zip(_STATS, numbers))
            for rs in data['real_servers']:
                dkey = (rs['address'], rs['port'])
                rs['stats'] = dict(zip(_STATS, dest_numbers.get(dkey, [])))
                # `ipvsadm -Ln`: Forward Weight ActiveConn InActConn -> the last two numbers.
                counts = conns.get(key, ([], {}))[1].get(dkey, [0, 0, 0])
                rs['active_connections'], rs['inactive_connections'] = counts[-2], counts[-1]
        services.append(data)
    module.exit_json(changed=False, services=services)
