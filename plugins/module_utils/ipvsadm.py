# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talk to the kernel's IPVS for the modules: read the table (one netlink dump, else ipvsadm), apply
one `ipvsadm -R` batch, and check what the batch did.

The modules stay thin: `ensure_table` is all of ipvs_table, `ensure_service` all of ipvs_service,
`read_info` all of ipvs_info.
"""

from __future__ import annotations

import os
import tempfile

from ansible_collections.lvs.cluster.plugins.module_utils import ipvs, ipvs_netlink, ipvs_table

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

    @staticmethod
    def no_ipvs(err):
        return any(hint in err for hint in _NO_IPVS_HINTS)

    def fail(self, what, rc, out, err, **extra):
        if self.no_ipvs(err):
            msg = ('IPVS is not available in this kernel: load the ip_vs module (modprobe ip_vs) '
                   'or use a kernel built with IP_VS')
        else:
            msg = '%s failed: %s' % (what, (err or out).strip())
        self.module.fail_json(msg=msg, rc=rc, stdout=out, stderr=err, **extra)

    def read_state(self, timeouts=False, counters=False, no_ipvs_ok=False):
        """The kernel's table, and its timeouts and counters when asked, in one read: one netlink
        dump in this process when the kernel answers it (tests/lab/ipvs_netlink_test.py proves it
        reads what ipvsadm does), else ipvsadm (`-Sn`, `-Ln --thresholds`, `-L --timeout`; it also
        loads ip_vs itself). -> ipvs_netlink.Dump, or None for a kernel without IPVS with no_ipvs_ok."""
        try:
            return ipvs_netlink.dump(counters=counters, timeouts=timeouts)
        except ipvs_netlink.NetlinkError:
            pass
        if not self.path:
            return None
        table = self.read_table(no_ipvs_ok)
        if table is None:
            return None
        return ipvs_netlink.Dump(table, self.read_timeouts() if timeouts else None,
                                 self.read_counters(table) if counters else None)

    def warn_table_assumed_empty(self):
        """Check mode on a fresh director (ipvsadm not installed, ip_vs not loadable yet): say that
        the table is taken as empty."""
        self.module.warn('%s: check mode takes the IPVS table as empty' % (
            'IPVS is not loaded' if self.path else 'ipvsadm is not installed'))

    def read_counters(self, table):
        """The counters as ipvs_netlink gives them, from `ipvsadm -Ln --stats --exact` and `-Ln --exact`."""
        if not table:
            return {}
        stats, conns = self.read_listing('--stats'), self.read_listing()
        counters = {}
        for key, (service, dests) in table.items():
            numbers, dest_numbers = stats.get(key, ([], {}))
            service_stats = ipvs_netlink.Stats(*(list(numbers) + [0] * 5)[:5])
            per_dest = {}
            for dkey in dests:
                # `ipvsadm -Ln`: Forward Weight ActiveConn InActConn -> the last two numbers
                counts = conns.get(key, ([], {}))[1].get(dkey, [0, 0, 0])
                per_dest[dkey] = ipvs_netlink.DestCounters(
                    ipvs_netlink.Stats(*(list(dest_numbers.get(dkey, [])) + [0] * 5)[:5]), counts[-2], counts[-1], 0)
            counters[key] = (service_stats, per_dest)
        return counters

    def read_table(self, no_ipvs_ok=False):
        """The whole table with ipvsadm: `ipvsadm -Sn`, plus the thresholds that -S leaves out.
        With no_ipvs_ok, a kernel without IPVS (ip_vs not loaded yet) gives None."""
        rc, out, err = self.run(['-S', '-n'])
        if rc != 0 and no_ipvs_ok and self.no_ipvs(err):
            return None
        if rc != 0:
            self.fail('ipvsadm -Sn', rc, out, err)
        table = self._parse(ipvs.parse_save, out, 'ipvsadm -Sn')
        if any(entry[1] for entry in table.values()):
            rc, listing, err = self.run(['-L', '-n', '--thresholds'])
            if rc != 0:
                self.fail('ipvsadm -Ln --thresholds', rc, listing, err)
            ipvs.apply_thresholds(table, self._parse(ipvs.parse_listing, listing, 'ipvsadm -Ln --thresholds'))
        return table

    def read_timeouts(self):
        """{tcp, tcpfin, udp} from `ipvsadm -L -n --timeout` ("Timeout (tcp tcpfin udp): 900 120 300")."""
        rc, out, err = self.run(['-L', '-n', '--timeout'])
        if rc != 0:
            self.fail('ipvsadm -L --timeout', rc, out, err)
        numbers = [int(word) for word in out.replace(':', ' ').split() if word.isdigit()]
        if len(numbers) != 3:
            self.module.fail_json(msg='cannot read the timeouts from ipvsadm -L --timeout: %r' % out, stdout=out)
        return dict(zip(ipvs_table.TIMEOUT_NAMES, numbers))

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
    state = ipvsadm.read_state(no_ipvs_ok=module.check_mode)
    table = state.table if state else {}
    if state is None:
        ipvsadm.warn_table_assumed_empty()
    options = dict(state=params['state'], purge=params['purge_real_servers'], drain=params['drain'])
    commands, after = ipvs.plan(table, service, dests, **options)
    result = dict(changed=bool(commands), commands=commands)
    if state is None:
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
            remaining = ipvs.plan(ipvsadm.read_state().table, service, dests, **options)[0]
            if remaining:
                applied = [c for c in commands if c not in remaining]
                ipvsadm.fail('ipvsadm -R (%d of %d changes applied; not applied: %s)'
                             % (len(applied), len(commands), '; '.join(remaining)),
                             rc, out, err, applied=applied, not_applied=remaining, commands=commands)
            module.warn('ipvsadm -R said: %s' % err.strip())
    module.exit_json(**result)


def _read_file(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write_file(module, path, content, mode=0o644):
    """content to path, atomically (a temporary file beside it, then a rename), parents made."""
    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path))
    with os.fdopen(handle, 'w') as out:
        out.write(content)
    os.chmod(tmp, mode)
    module.atomic_move(tmp, path)


def _file_diff(path, before, after):
    return dict(before_header=path, after_header=path, before=before or '', after=after)


def ensure_table(module):
    """Make the IPVS table hold the listed virtual services, as lvs.cluster.ipvs_table's options
    say: one read, one plan, one `ipvsadm -R` batch, then the record and the rules file."""
    params = module.params
    errors = []
    try:
        foreign = ipvs_table.foreign_keys(params['foreign_services'])
    except ValueError as exc:
        errors.append(str(exc))
        foreign = set()
    wanted, absent, service_errors = ipvs_table.desired_table(params['virtual_services'], params['forwarding'], foreign)
    errors += service_errors
    record_path = params['record_file']
    record_before = _read_file(record_path) if record_path else None
    try:
        owned = ipvs_table.record_keys(record_before)
    except ValueError as exc:
        errors.append('record_file: %s is not this module\'s record (%s): move it away' % (record_path, exc))
        owned = []
    if errors:
        module.fail_json(msg='; '.join(errors), errors=errors)

    # In check mode on a fresh director (ipvsadm not installed, ip_vs not loaded: the install and
    # modules phases only said what they would do) the table is taken as empty, and the result says so.
    ipvsadm = Ipvsadm(module, missing_ok=module.check_mode)
    state = ipvsadm.read_state(timeouts=params['timeouts'] is not None, no_ipvs_ok=module.check_mode)
    assumed_empty = state is None
    if assumed_empty:
        table, current_timeouts = {}, {}
        ipvsadm.warn_table_assumed_empty()
    else:
        table, current_timeouts = state.table, state.timeouts or {}
    plan = ipvs_table.plan_table(table, wanted, absent, owned, foreign, purge=params['purge_real_servers'],
                                 drain=params['drain'], remove_unlisted=params['remove_unlisted'],
                                 timeouts=params['timeouts'], current_timeouts=current_timeouts)
    record_after = record_before   # the same services: the file stays as it is
    if record_path and (record_before is None or owned != plan.record):
        record_after = ipvs_table.record_text(plan.record)
    rules_path = params['rules_file']
    rules_before = _read_file(rules_path) if rules_path else None
    rules_after = ipvs_table.rules_text(plan.table_after, params['rules_header'], params['timeouts']) if rules_path else None

    result = dict(changed=False, commands=plan.commands,
                  services=[dict(name=change.name, service=ipvs.describe_key(change.key), commands=change.commands)
                            for change in plan.changes],
                  removed=[ipvs.describe_key(key) for key in plan.removed])
    if assumed_empty:
        result['table_assumed_empty'] = True
    files = [(path, before, after) for path, before, after in ((record_path, record_before, record_after),
                                                               (rules_path, rules_before, rules_after))
             if path and before != after]
    result['changed'] = bool(plan.commands or files)
    if module._diff:
        diffs = [dict(before_header='%s (before)' % ipvs_table.describe(change.name, change.key),
                      after_header='%s (after)' % ipvs_table.describe(change.name, change.key),
                      before=ipvs.render_entry(*change.before), after=ipvs.render_entry(*change.after))
                 for change in plan.changes]
        if plan.timeouts_line:
            diffs.append(dict(before_header='IPVS timeouts (before)', after_header='IPVS timeouts (after)',
                              before='%(tcp)s %(tcpfin)s %(udp)s\n' % dict((k, current_timeouts.get(k, '?')) for k in ipvs_table.TIMEOUT_NAMES),
                              after=plan.timeouts_line[len('--set '):] + '\n'))
        diffs += [_file_diff(path, before, after) for path, before, after in files]
        result['diff'] = diffs
    if module.check_mode:
        module.exit_json(**result)

    if plan.commands:
        rc, out, err = ipvsadm.restore(plan.commands)
        # ipvsadm -R goes on past a line the kernel refuses and exits with the last line's status:
        # a clean batch is taken at its word, otherwise the kernel's table says what was applied.
        if rc != 0 or err.strip():
            now = ipvsadm.read_state(timeouts=params['timeouts'] is not None)
            table_now, timeouts_now = now.table, now.timeouts or {}
            again = ipvs_table.plan_table(table_now, wanted, absent, owned, foreign, purge=params['purge_real_servers'],
                                          drain=params['drain'], remove_unlisted=params['remove_unlisted'],
                                          timeouts=params['timeouts'], current_timeouts=timeouts_now)
            if again.commands:
                if record_path:
                    _write_file(module, record_path, ipvs_table.record_text(
                        ipvs_table.record_after_failure(table_now, owned, plan)))
                remaining = set(again.commands)
                groups = [(change.name, ipvs.describe_key(change.key), ipvs_table.describe(change.name, change.key), change.commands)
                          for change in plan.changes]
                if plan.timeouts_line:
                    groups.append(('timeouts', 'IPVS timeouts', 'IPVS timeouts', [plan.timeouts_line]))
                per_service = [dict(name=name, service=service, label=label, applied=[c for c in lines if c not in remaining],
                                    not_applied=[c for c in lines if c in remaining])
                               for name, service, label, lines in groups]
                failing = [entry for entry in per_service if entry['not_applied']]
                summary = '; '.join('%s: not applied: %s' % (entry['label'], ', '.join(entry['not_applied']))
                                    for entry in failing)
                applied = [c for c in plan.commands if c not in remaining]
                ipvsadm.fail('ipvsadm -R (%d of %d changes applied and %d of %d services in full, as the kernel\'s '
                             'table shows them; %s. The record lists what the kernel holds; the rules file was not '
                             'written)' % (len(applied), len(plan.commands), len(per_service) - len(failing),
                                           len(per_service), summary),
                             rc, out, err, applied=applied, not_applied=again.commands, services=per_service,
                             commands=plan.commands)
            module.warn('ipvsadm -R said: %s' % err.strip())
    for path, before, after in files:
        _write_file(module, path, after)
    module.exit_json(**result)


_STATS = ('connections', 'packets_in', 'packets_out', 'bytes_in', 'bytes_out')


def read_info(module):
    """The whole table as data, with per-entry counters when asked."""
    ipvsadm = Ipvsadm(module, missing_ok=True)   # the netlink read needs no ipvsadm
    state = ipvsadm.read_state(counters=module.params['counters'])
    if state is None:
        Ipvsadm(module)   # says to install ipvsadm
    services = []
    for key, (service, dests) in sorted(state.table.items(), key=lambda item: ipvs.describe_key(item[0])):
        data = ipvs.service_to_dict(service, dests)
        if module.params['counters']:
            stats, dest_counters = state.counters.get(key, (ipvs_netlink.Stats(0, 0, 0, 0, 0), {}))
            data['stats'] = dict(zip(_STATS, stats))
            for rs in data['real_servers']:
                counters = dest_counters[(rs['address'], rs['port'])]
                rs['stats'] = dict(zip(_STATS, counters.stats))
                rs['active_connections'], rs['inactive_connections'] = counters.active_connections, counters.inactive_connections
        services.append(data)
    module.exit_json(changed=False, services=services)
