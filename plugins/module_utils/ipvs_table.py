# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole IPVS table at once: what lvs.cluster.ipvs_table plans, nothing that runs a command.

- ``desired_table``: the cluster model's list of virtual services (each in ipvs_service's shape,
  with its ``name``) as wanted services, or every error of the list, each naming its entry and field;
- ``plan_table``: from the kernel's table, the services this module made before (its record), the
  services another writer owns (never touched) and the timeouts, one ``ipvsadm -R`` batch and,
  per service, its lines and its entry before and after;
- ``rules_text``: the table after the batch as the distribution's rules file restores it at boot;
- ``record_after_failure``: what the record must hold when a batch failed part way.
"""

from __future__ import annotations

import ipaddress
import json
from collections import namedtuple

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import ArgumentTypeError, ArgumentValueError, ElementError, RequiredError, UnsupportedError
from ansible_collections.lvs.cluster.plugins.module_utils import ipvs, keepalived, model

TIMEOUT_NAMES = ('tcp', 'tcpfin', 'udp')

# One wanted service: its Service, its real servers as ipvs.desired_service gives them, its name.
Wanted = namedtuple('Wanted', 'service dests name')
# One service's part of the plan: key, its name, its lines, its entry (Service, dests) before and after.
Change = namedtuple('Change', 'key name commands before after')
Plan = namedtuple('Plan', 'commands changes removed record timeouts_line table_after')


def _where(index, entry):
    where = 'virtual_services[%d]' % index
    if isinstance(entry, dict) and entry.get('name'):
        where += ' (%s)' % entry['name']
    return where


# ---------------------------------------------------------------------------------------------
# checking the entries: ipvs_service's own argument spec, each message naming its entry and field

# Errors about one option's value: checked option by option, so each message names its option.
_VALUE_ERRORS = (ArgumentTypeError, ArgumentValueError, ElementError)
_TYPES = {'str': str, 'int': int, 'bool': bool, 'list': list, 'dict': dict}


def validate_options(spec, params, where, checked_elsewhere=()):
    """params checked against spec: (the params as the module would get them, [messages naming the
    option whose value is wrong], [messages of the rules between options])."""
    argument_spec = spec['argument_spec']
    value_errors, rule_errors = [], []
    for name in params:
        if name in argument_spec and name not in checked_elsewhere:
            single = ArgumentSpecValidator({name: argument_spec[name]}).validate({name: params[name]})
            value_errors += ['%s.%s: %s' % (where, name, msg) for msg in single.error_messages]
    result = ArgumentSpecValidator(**spec).validate(params)
    for error in result.errors:
        if isinstance(error, _VALUE_ERRORS):
            continue
        if isinstance(error, UnsupportedError):
            value_errors += ['%s.%s: unknown option (known: %s)' % (where, name, ', '.join(sorted(argument_spec)))
                             for name in params if name not in argument_spec]
            continue
        if isinstance(error, RequiredError):
            value_errors += ['%s.%s: is required' % (where, name) for name, option in argument_spec.items()
                             if option.get('required') and params.get(name) is None]
        else:
            rule_errors.append('%s: %s' % (where, error.msg))
    return result.validated_parameters, value_errors, rule_errors


def _keepalived_fields(extra, where):
    """A service's keepalived fields (health_check, sorry_server, quorum, inhibit) checked by their
    spec and rules: (converted fields, [messages naming the field])."""
    validated, errors, rule_errors = validate_options(keepalived.keepalived_service_spec(), extra, where)
    # the spec has no rules between fields: its other errors repeat a field's, without its name
    errors = errors or rule_errors
    if not errors:
        errors = keepalived.keepalived_errors(validated, where)
    return validated, errors


def _exact(spec, params):
    """Whether params already are what the spec's conversion would leave them (every option known,
    each value of its type and among its choices), so that converting them changes nothing."""
    for name, value in params.items():
        option = spec.get(name)
        if option is None:
            return False
        if value is None:
            continue
        kind = _TYPES.get(option.get('type', 'str'))
        # a bool is an int to isinstance, not to the spec
        if kind is None or not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            return False
        choices = option.get('choices')
        if choices and (value not in choices if kind is not list else any(item not in choices for item in value)):
            return False
        if kind is list and option.get('elements') == 'str' and any(not isinstance(item, str) for item in value):
            return False
    return True


_SPECS = []


def _entry_specs(fresh=False):
    """ipvs_service's spec of a service (real_servers without its options) and of a real server, as
    ArgumentSpecValidator's keyword arguments: a fresh copy for the validator, else one copy kept
    for reading (the fast path reads them for each of thousands of entries)."""
    if fresh or not _SPECS:
        service_spec = model.ipvs_service_spec()
        specs = (service_spec, dict(argument_spec=service_spec['argument_spec']['real_servers'].pop('options')))
        if fresh:
            return specs
        _SPECS.append(specs)
    return _SPECS[0]


def check_entry(entry, forwarding, where, ignore_keepalived=False):
    """One virtual service of the model checked as ipvs_service checks its options, and its
    keepalived fields by their own spec (or, with ignore_keepalived, set aside unchecked):
    (options as converted, keepalived fields, [messages naming the field], [messages of the rules
    between options]). An entry whose values are already exact (what a YAML inventory gives) is
    taken as it is: converting it would change nothing, and the list may hold thousands."""
    service_spec, real_server_spec = _entry_specs()
    params, extra = keepalived.split_service(entry)
    if ignore_keepalived:
        extra, errors = {}, []
    else:
        extra, errors = _keepalived_fields(extra, where)
    if not params.get('forwarding'):
        params['forwarding'] = forwarding
    real_servers = params.get('real_servers')
    if (not errors and _exact(service_spec['argument_spec'], params) and isinstance(real_servers, (list, type(None)))
            and all(isinstance(rs, dict) and _exact(real_server_spec['argument_spec'], rs) and rs.get('address') is not None
                    for rs in real_servers or ())):
        return params, extra, [], []
    service_spec, real_server_spec = _entry_specs(fresh=True)
    # a list of real servers is checked one by one below, each named by its index
    listed = ('real_servers',) if isinstance(real_servers, list) else ()
    validated, value_errors, rule_errors = validate_options(service_spec, params, where, checked_elsewhere=listed)
    errors += value_errors
    checked_servers = []
    for index, real_server in enumerate(real_servers if listed else ()):
        field = '%s.real_servers[%d]' % (where, index)
        if not isinstance(real_server, dict):
            errors.append('%s: must be a dictionary with at least an address' % field)
            continue
        checked, rs_errors, rs_rule_errors = validate_options(real_server_spec, real_server, field)
        errors += rs_errors
        rule_errors += rs_rule_errors
        checked_servers.append(checked)
    if listed:
        validated['real_servers'] = checked_servers
    return validated, extra, errors, rule_errors


# ---------------------------------------------------------------------------------------------
# the plan

def describe(name, key):
    """A service for people: its name and how the kernel knows it."""
    text = ipvs.describe_key(key)
    return text if name == text else '%s (%s)' % (name, text)


def desired_table(entries, forwarding=model.DEFAULT_FORWARDING, foreign=()):
    """The list as ({key: Wanted} to be present, [keys to be absent], [errors naming entry and field]).

    Every entry is checked before anything is planned: one bad field anywhere and nothing changes.
    A service another writer owns (foreign) cannot be listed too."""
    wanted, absent, errors, seen = {}, [], [], {}
    for index, entry in enumerate(entries or []):
        where = _where(index, entry)
        if not isinstance(entry, dict):
            errors.append('%s: must be a dictionary (a virtual service)' % where)
            continue
        params, dummy, value_errors, rule_errors = check_entry(entry, forwarding, where, ignore_keepalived=True)
        if value_errors:
            errors += value_errors
            continue
        try:
            service, dests = ipvs.desired_service(params)
        except ipvs.ValidationError as exc:
            errors.append('%s.%s' % (where, exc))
            continue
        if rule_errors:
            errors += rule_errors
            continue
        if service.key in seen:
            errors.append('%s: the same virtual service as %s (%s)' % (where, seen[service.key], ipvs.describe_key(service.key)))
            continue
        seen[service.key] = where
        if service.key in foreign:
            errors.append('%s: %s is another writer\'s (foreign_services): list it in one place only'
                          % (where, ipvs.describe_key(service.key)))
        elif model.is_present(entry):
            wanted[service.key] = Wanted(service, dests, entry.get('name') or ipvs.describe_key(service.key))
        else:
            absent.append(service.key)
    return wanted, absent, errors


def foreign_keys(entries, forwarding=model.DEFAULT_FORWARDING):
    """The keys of the services another writer owns (entries naming them: an address, port and
    protocol, or a fwmark and family), or ValueError naming the entry."""
    keys = set()
    for index, entry in enumerate(entries or []):
        try:
            keys.add(model.service_key(entry))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError('foreign_services[%d]: does not name a virtual service (%s)' % (index, exc))
    return keys


def record_keys(text):
    """The record of the services this module made (a JSON list of ipvs_service options naming each,
    as model.key_options gives them) as service keys; '' or missing is none."""
    if not text or not text.strip():
        return []
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError('expected a JSON list of virtual services')
    return [model.service_key(item) for item in data]


def record_text(keys):
    """The record for these keys, as JSON (one stable spelling: a second run rewrites nothing)."""
    return json.dumps([model.key_options(key) for key in keys], indent=4, sort_keys=True) + '\n'


def timeouts_line(wanted, current):
    """The `--set tcp tcpfin udp` line that gives the kernel the wanted timeouts (0 or missing keeps
    the kernel's), or None when it has them already."""
    wanted = dict((name, int((wanted or {}).get(name) or 0)) for name in TIMEOUT_NAMES)
    if not any(value and value != current.get(name) for name, value in wanted.items()):
        return None
    return '--set %d %d %d' % tuple(wanted[name] for name in TIMEOUT_NAMES)


def plan_table(table, wanted, absent=(), owned=(), foreign=(), purge=True, drain=False, remove_unlisted=True,
               timeouts=None, current_timeouts=None):
    """The batch that takes the kernel's `table` to what is wanted.

    owned: the keys this module made before (its record); those the list no longer names are
    removed with remove_unlisted, kept in the record without it. foreign: keys another writer
    owns: never touched, never recorded. A service that is neither listed nor owned is never
    touched. Returns a Plan: the batch's lines, the Change of each service that changes (in list
    order, then the removals), the keys removed, the record after, the timeouts line, the table
    after (without the foreign services)."""
    foreign = set(foreign)
    commands, changes, removed = [], [], []
    after = dict((key, entry) for key, entry in table.items() if key not in foreign)
    for key, item in wanted.items():
        if key in foreign:
            continue
        lines, entry = ipvs.plan(table, item.service, item.dests, purge=purge, drain=drain)
        if lines:
            changes.append(Change(key, item.name, lines, table.get(key, (None, {})), entry))
            commands += lines
        after[key] = entry
    unlisted = [key for key in owned if key not in wanted and key not in foreign and key not in absent]
    for key in list(absent) + (unlisted if remove_unlisted else []):
        if key in foreign or key not in table:
            continue
        line = '-D ' + ' '.join(ipvs.service_switches(key))
        changes.append(Change(key, ipvs.describe_key(key), [line], table[key], (None, {})))
        commands.append(line)
        removed.append(key)
        after.pop(key, None)
    record = [key for key in wanted if key not in foreign]
    if not remove_unlisted:
        record += [key for key in unlisted if key not in record]
    set_line = timeouts_line(timeouts, current_timeouts or {}) if timeouts is not None else None
    if set_line:
        commands.append(set_line)
    return Plan(commands, changes, removed, record, set_line, after)


def rules_text(table_after, header='', timeouts=None):
    """What the rules file restored at boot holds: the header, every service of the table after
    the batch but the foreign ones (they are not in table_after) in a stable order, each with its
    real servers, then the timeouts given (`--set`, which `ipvsadm -R` runs as any other line)."""
    body = ''.join(ipvs.render_entry(*table_after[key]) for key in sorted(table_after, key=_sort_key))
    set_line = ''
    if timeouts is not None and any(int(timeouts.get(name) or 0) for name in TIMEOUT_NAMES):
        set_line = '--set %d %d %d\n' % tuple(int(timeouts.get(name) or 0) for name in TIMEOUT_NAMES)
    return header + body + set_line


def _sort_key(key):
    # address services by family, address (as a number), protocol and port; then fwmark services
    if key[0] == 'fwmark':
        return (1, key[1], key[2], '', 0)
    return (0, key[1], int(ipaddress.ip_address(key[3])), key[2], key[4])


def record_after_failure(table_now, owned, plan):
    """After a batch failed part way: the record names every service this module made or was
    making that the kernel now holds, so a later run still owns (and can remove) it."""
    candidates = list(plan.record) + [key for key in owned if key not in plan.record]
    return [key for key in candidates if key in table_now]


def ipvs_table_spec():
    """lvs.cluster.ipvs_table's options, as AnsibleModule's keyword arguments. Each entry of
    virtual_services is checked by check_entry against ipvs_service's own spec (model.py), naming
    the entry: the spec of a service is written once."""
    return dict(argument_spec=dict(
        virtual_services=dict(type='list', elements='dict', default=[]),
        foreign_services=dict(type='list', elements='dict', default=[]),
        forwarding=dict(type='str', default=model.DEFAULT_FORWARDING, choices=sorted(model.FORWARDING_METHODS)),
        purge_real_servers=dict(type='bool', default=True),
        drain=dict(type='bool', default=False),
        remove_unlisted=dict(type='bool', default=True),
        record_file=dict(type='path', default='/var/lib/lvs-cluster/director-services.json'),
        timeouts=dict(type='dict', options=dict((name, dict(type='int', default=0)) for name in TIMEOUT_NAMES)),
        rules_file=dict(type='path'),
        rules_header=dict(type='str', default=''),
    ))
