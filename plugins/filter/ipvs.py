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
        params = _numbers(spec, _INTEGERS)
        params.pop('name', None)
        params['forwarding'] = params.get('forwarding') or forwarding
        params['real_servers'] = [_numbers(rs, _DEST_INTEGERS) if isinstance(rs, dict) else rs
                                  for rs in params.get('real_servers') or []]
        try:
            service = ipvs.desired_service(params)[0]
        except ipvs.ValidationError as exc:
            errors.append('%s.%s' % (where, exc))
            continue
        if service.key in seen:
            errors.append('%s: the same virtual service as %s (%s)' % (where, seen[service.key], ipvs.describe_key(service.key)))
        seen.setdefault(service.key, where)
    return errors


class FilterModule:
    """lvs.cluster filters."""

    def filters(self):
        return {'ipvs_service_errors': ipvs_service_errors}
