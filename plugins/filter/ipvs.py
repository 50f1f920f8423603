# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check virtual services on the controller with the module's own rules, before a role changes anything."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.lvs.cluster.plugins.module_utils import ipvs

# What the module's argument spec would turn from text into numbers.
_INTEGERS = ('port', 'fwmark', 'persistent')
_DEST_INTEGERS = ('port', 'weight', 'upper_threshold', 'lower_threshold')


def _numbers(spec, fields):
    out = dict(spec)
    for field in fields:
        value = out.get(field)
        if isinstance(value, str) and value.strip().isdigit():
            out[field] = int(value)
    return out


def _params(spec, forwarding):
    """A virtual service from inventory as the module's options (numbers given as text read as numbers)."""
    params = _numbers(spec, _INTEGERS)
    params.pop('name', None)
    params['forwarding'] = params.get('forwarding') or forwarding
    params['real_servers'] = [_numbers(rs, _DEST_INTEGERS) if isinstance(rs, dict) else rs
                              for rs in params.get('real_servers') or []]
    return params


def ipvs_service_errors(services, forwarding='dr', name='virtual_services'):
    """Every problem with these services, as ipvs_service would name it, prefixed by where it is."""
    if not isinstance(services, list):
        raise AnsibleFilterError('ipvs_service_errors: %s must be a list of virtual services' % name)
    errors = []
    seen = {}
    for index, spec in enumerate(services):
        where = '%s[%d]' % (name, index)
        if not isinstance(spec, dict):
            errors.append('%s: must be a dictionary (a virtual service)' % where)
            continue
        if spec.get('name'):
            where += ' (%s)' % spec['name']
        try:
            service = ipvs.desired_service(_params(spec, forwarding))[0]
        except ipvs.ValidationError as exc:
            errors.append('%s.%s' % (where, exc))
            continue
        if service.key in seen:
            errors.append('%s: the same virtual service as %s (%s)' % (where, seen[service.key], ipvs.describe_key(service.key)))
        seen.setdefault(service.key, where)
    return errors


def ipvs_service_keys(services, forwarding='dr'):
    """What names each virtual service the kernel is to hold (state present), as ipvs_service options:
    {protocol, address, port} with the address as the kernel prints it, or {fwmark, family}."""
    if not isinstance(services, list):
        raise AnsibleFilterError('ipvs_service_keys: expected a list of virtual services')
    keys = []
    for index, spec in enumerate(services):
        if not isinstance(spec, dict) or (spec.get('state') or 'present') != 'present':
            continue
        try:
            key = ipvs.desired_service(_params(spec, forwarding))[0].key
        except ipvs.ValidationError as exc:
            raise AnsibleFilterError('ipvs_service_keys: virtual service %d: %s' % (index, exc))
        if key[0] == 'fwmark':
            keys.append({'fwmark': key[2], 'family': key[1]})
        else:
            keys.append({'protocol': key[2], 'address': key[3], 'port': key[4]})
    return keys


class FilterModule:
    """lvs.cluster filters."""

    def filters(self):
        return {'ipvs_service_errors': ipvs_service_errors, 'ipvs_service_keys': ipvs_service_keys}
