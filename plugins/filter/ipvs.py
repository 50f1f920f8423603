# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' filters: the cluster model of module_utils/model.py, run on the controller.

ipvs_service_errors checks virtual services with lvs.cluster.ipvs_service's own argument spec
(ArgumentSpecValidator, so text is converted exactly as the module converts it) and then with its
own rules; director_config and realserver_config say what each role sets up.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import ArgumentTypeError, ArgumentValueError, ElementError, RequiredError, UnsupportedError
from ansible_collections.lvs.cluster.plugins.module_utils import ipvs, model

# Errors about one option's value: checked option by option, so each message names its option.
_VALUE_ERRORS = (ArgumentTypeError, ArgumentValueError, ElementError)


def _validate(spec, params, where, checked_elsewhere=()):
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


def _service(spec, forwarding, where):
    """A virtual service from inventory checked as ipvs_service checks its options: (Service, [])
    or (None, [messages, each naming the field])."""
    service_spec = model.ipvs_service_spec()
    real_server_spec = dict(argument_spec=service_spec['argument_spec']['real_servers'].pop('options'))
    params = dict(spec)
    params.pop('name', None)
    if not params.get('forwarding'):
        params['forwarding'] = forwarding
    # a list of real servers is checked one by one below, each named by its index
    listed = ('real_servers',) if isinstance(params.get('real_servers'), list) else ()
    validated, errors, rule_errors = _validate(service_spec, params, where, checked_elsewhere=listed)
    real_servers = []
    if isinstance(params.get('real_servers'), list):
        for index, real_server in enumerate(params['real_servers']):
            field = '%s.real_servers[%d]' % (where, index)
            if not isinstance(real_server, dict):
                errors.append('%s: must be a dictionary with at least an address' % field)
                continue
            checked, rs_errors, rs_rule_errors = _validate(real_server_spec, real_server, field)
            errors += rs_errors
            rule_errors += rs_rule_errors
            real_servers.append(checked)
    if errors:
        return None, errors
    validated['real_servers'] = real_servers
    # The rules between options (fwmark or address and port...) are the module's own too: its
    # message names the field, where the argument spec's names only the rule.
    try:
        service = ipvs.desired_service(validated)[0]
    except ipvs.ValidationError as exc:
        return None, ['%s.%s' % (where, exc)]
    if rule_errors:
        return None, rule_errors
    return service, []


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
        service, service_errors = _service(spec, forwarding, where)
        if service_errors:
            errors += service_errors
            continue
        if service.key in seen:
            errors.append('%s: the same virtual service as %s (%s)' % (where, seen[service.key], ipvs.describe_key(service.key)))
        seen.setdefault(service.key, where)
    return errors


def ipvs_service_keys(services, forwarding='dr'):
    """What names each virtual service the kernel is to hold (state present), as ipvs_service
    options: {protocol, address, port} with the address as the kernel prints it, or {fwmark, family}."""
    if not isinstance(services, list):
        raise AnsibleFilterError('ipvs_service_keys: expected a list of virtual services')
    keys = []
    for index, spec in enumerate(services):
        if not isinstance(spec, dict) or not model.is_present(spec):
            continue
        service, errors = _service(spec, forwarding, 'virtual_services[%d]' % index)
        if errors:
            raise AnsibleFilterError('ipvs_service_keys: %s' % '; '.join(errors))
        keys.append(model.key_options(service.key))
    return keys


def _list(value, what):
    if not isinstance(value, list):
        raise AnsibleFilterError('%s must be a list, got %r' % (what, value))
    return value


def director_config(services, forwarding, facts=None, sysctl_interfaces=None, internal_network='',
                    masquerade=True, vip_interface=''):
    """What lvs.cluster.director sets up for these services (module_utils/model.py director_config)."""
    return model.director_config(_list(services, 'director_config: the virtual services'), forwarding,
                                 facts=facts or {}, sysctl_interfaces=sysctl_interfaces or [],
                                 internal_network=internal_network or '', masquerade=bool(masquerade),
                                 vip_interface=vip_interface or '')


def realserver_config(services, addresses, forwarding, extra_vips=None, facts=None, rp_filter=2,
                      director_internal_address=''):
    """What lvs.cluster.realserver sets up on a host with these addresses (model.realserver_config)."""
    return model.realserver_config(_list(services, 'realserver_config: the virtual services'),
                                   _list(addresses, 'realserver_config: addresses'), forwarding,
                                   extra_vips=extra_vips or [], facts=facts or {}, rp_filter=rp_filter,
                                   director_internal_address=director_internal_address or '')


class FilterModule:
    """lvs.cluster filters."""

    def filters(self):
        return {'ipvs_service_errors': ipvs_service_errors, 'ipvs_service_keys': ipvs_service_keys,
                'director_config': director_config, 'realserver_config': realserver_config}
