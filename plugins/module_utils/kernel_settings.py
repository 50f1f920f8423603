# -*- coding: utf-8 -*-
# Copyright: lvs.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel settings (sysctls) and kernel modules, a whole list of each in one run, for
lvs.cluster.kernel_settings: check the input, read the kernel's state, plan, render the boot files,
apply.

- ``check_sysctls`` / ``check_modules``: the lists as given, checked, every error naming its field
  (``sysctls[2].name: ...``);
- ``sysctl_path``, ``normalize_value``, ``values_equal``: how a setting's name maps to /proc/sys and
  how values compare (words separated by white space; numbers as numbers);
- ``parse_proc_modules``, ``parse_modules_builtin``: what /proc/modules and modules.builtin say;
- ``plan_sysctls``, ``plan_modules``, ``file_change``: what differs;
- ``render_sysctl_file``, ``render_modules_file``: the sysctl.d and modules-load.d files;
- ``Kernel``: the host's /proc, /sys and files under one root (``/``; a scratch directory in tests);
- ``ensure_kernel_settings``: the module: read, plan, report, and only then act, unless in check mode.

Only the standard library and ansible's module_utils: this runs on the managed hosts (Python 3.9+).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import namedtuple

MODULE_NAME = 'lvs.cluster.kernel_settings'

# A setting that could not be read: missing (no such key on this host) or not readable (write-only).
MISSING = 'missing'
UNREADABLE = 'unreadable'

# One setting that differs: its name, the value now (text, MISSING or UNREADABLE), the value wanted.
SysctlChange = namedtuple('SysctlChange', 'name before after')
# One file: its path as given, its text before (None: no file) and after (None: no file).
FileChange = namedtuple('FileChange', 'path before after')

_MODULE_NAME = re.compile(r'^[A-Za-z0-9_-]+$')
_INTEGER = re.compile(r'^[-+]?[0-9]+$')


class KernelSettingsError(Exception):
    """Bad input or a kernel that cannot do what is asked; the message names the field or key."""


# ---------------------------------------------------------------------------------------------
# names and values

def sysctl_path(name):
    """The path of a setting under /proc/sys, as sysctl(8) and systemd-sysctl map it: a dotted name
    has its dots and slashes swapped (an interface name's dots are slashes in the key:
    net.ipv4.conf.eth0/100.rp_filter is net/ipv4/conf/eth0.100/rp_filter); a name whose first
    separator is a slash already is the path."""
    dot, slash = name.find('.'), name.find('/')
    if slash != -1 and (dot == -1 or slash < dot):
        return name
    return name.translate(str.maketrans('./', '/.'))


def normalize_value(value):
    """A setting's value as text: white space runs made one space, a boolean 1 or 0, a number its
    digits. Raises ValueError for what is not a value (nothing, a list, a dict)."""
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise ValueError('must be text or a number, got %s' % ('nothing' if value is None else type(value).__name__))
    return ' '.join(value.split())


def _word(word):
    return int(word) if _INTEGER.match(word) else word


def values_equal(current, wanted):
    """Whether the kernel's value is the wanted one: the same words (the kernel separates the parts
    of a value such as tcp_rmem with tabs), numbers compared as numbers (01 is 1)."""
    if current in (None, MISSING, UNREADABLE):
        return False
    now, want = current.split(), wanted.split()
    return len(now) == len(want) and all(_word(a) == _word(b) for a, b in zip(now, want))


def _name_error(name):
    """What is wrong with a setting's name, or None."""
    if not name:
        return 'is empty'
    if any(char.isspace() for char in name):
        return "%r has white space in it: a setting's name is one word, such as net.ipv4.ip_forward" % name
    if '=' in name:
        return "%r has '=' in it: give the value as value" % name
    if name[0] in '-#;':
        return "%r starts with %r: give the setting's own name, such as net.ipv4.ip_forward" % (name, name[0])
    if any(char in name for char in '*?[]'):
        return "%r is a pattern: name one setting" % name
    if any(part in ('', '.', '..') for part in sysctl_path(name).split('/')):
        return "%r is not a setting's name (an empty part, '.' or '..')" % name
    return None


def check_sysctls(entries):
    """The settings as [(name, value)] in the order given (a name given twice with the same value
    once), and [errors naming the field]."""
    checked, errors, seen = [], [], {}
    for index, entry in enumerate(entries or []):
        where = 'sysctls[%d]' % index
        if not isinstance(entry, dict):
            errors.append('%s: must be a dictionary with a name and a value' % where)
            continue
        name = entry.get('name')
        name = name.strip() if isinstance(name, str) else name
        problem = _name_error(name) if isinstance(name, str) else 'must be text, got %s' % type(name).__name__
        if problem:
            errors.append('%s.name: %s' % (where, problem))
            continue
        try:
            value = normalize_value(entry.get('value'))
        except ValueError as exc:
            errors.append('%s.value: %s' % (where, exc))
            continue
        if not value:
            errors.append('%s.value: is empty (%s needs a value)' % (where, name))
            continue
        path = sysctl_path(name)
        if path in seen:
            first, first_value = seen[path]
            if not values_equal(first_value, value):
                errors.append('%s.name: %s is given twice with different values (%s: %s, here: %s)'
                              % (where, name, first, first_value, value))
            continue
        seen[path] = (where, value)
        checked.append((name, value))
    return checked, errors


def _module_error(name):
    """What is wrong with a kernel module's name, or None."""
    if not name:
        return 'is empty'
    if '/' in name:
        return "%r is a path: give the module's name, as lsmod shows it (such as ipip)" % name
    if any(char.isspace() for char in name):
        return "%r has white space in it: give one module's name per entry" % name
    if name.startswith('-'):
        return "%r starts with '-': give the module's name, not an option" % name
    if name.endswith(('.ko', '.ko.xz', '.ko.zst', '.ko.gz')):
        return "%r is a file name: give the module's name (%s)" % (name, name.split('.', 1)[0])
    if not _MODULE_NAME.match(name):
        return "%r is not a kernel module's name (letters, digits, '_' and '-')" % name
    return None


def module_key(name):
    """How the kernel names a module: '-' and '_' are the same in a module's name (ip-vs is ip_vs)."""
    return name.replace('-', '_')


def check_modules(names):
    """The module names in the order given (each once), and [errors naming the field]."""
    checked, errors, seen = [], [], set()
    for index, name in enumerate(names or []):
        name = name.strip() if isinstance(name, str) else name
        problem = _module_error(name) if isinstance(name, str) else 'must be text, got %s' % type(name).__name__
        if problem:
            errors.append('modules[%d]: %s' % (index, problem))
        elif module_key(name) not in seen:
            seen.add(module_key(name))
            checked.append(name)
    return checked, errors


# ---------------------------------------------------------------------------------------------
# what the kernel says

def parse_proc_modules(text):
    """The loaded modules' names from /proc/modules ("ip_vs 172032 2 ip_vs_wlc, Live 0x0"); a
    module being unloaded is not loaded."""
    loaded = set()
    for line in text.splitlines():
        fields = line.split()
        if fields and not (len(fields) > 4 and fields[4] == 'Unloading'):
            loaded.add(module_key(fields[0]))
    return loaded


def parse_modules_builtin(text):
    """The built-in modules' names from modules.builtin (kernel/net/ipv4/ipip.ko, one a line)."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line:
            names.add(module_key(os.path.basename(line).split('.', 1)[0]))
    return names


# ---------------------------------------------------------------------------------------------
# the plan and the files

def plan_sysctls(wanted, current):
    """[SysctlChange] of the settings whose kernel value (current: {name: value, MISSING or
    UNREADABLE}) is not the wanted one, in the order given."""
    return [SysctlChange(name, current.get(name, MISSING), value) for name, value in wanted
            if not values_equal(current.get(name, MISSING), value)]


def plan_modules(wanted, present):
    """The modules to load: those given that are neither loaded nor built in (present: names as
    module_key gives them)."""
    return [name for name in wanted if module_key(name) not in present]


def _header(what, header):
    lines = ['# %s, written by %s (Ansible).' % (what, MODULE_NAME)]
    lines += ['# %s' % line if line.strip() else '#' for line in (header or '').strip('\n').splitlines()]
    lines.append('# Each run replaces this file: change the list where it is given, not here.')
    return '\n'.join(lines) + '\n'


def render_sysctl_file(sysctls, header=''):
    """The sysctl.d file that systemd-sysctl applies at boot: a header, then `name = value` lines in
    the order given. No settings: no file (None)."""
    if not sysctls:
        return None
    return _header('Kernel settings that systemd-sysctl sets at boot', header) + \
        ''.join('%s = %s\n' % (name, value) for name, value in sysctls)


def render_modules_file(modules, header=''):
    """The modules-load.d file that systemd-modules-load reads at boot: a header, then one module a
    line in the order given. No modules: no file (None)."""
    if not modules:
        return None
    return _header('Kernel modules that systemd-modules-load loads at boot', header) + \
        ''.join('%s\n' % name for name in modules)


def file_change(path, before, after):
    """A FileChange when the file's text is to change (None for no file), else None."""
    return FileChange(path, before, after) if path and before != after else None


def _value_text(value):
    if value == MISSING:
        return '(no such setting)'
    if value == UNREADABLE:
        return '(not readable)'
    return ' '.join(value.split())


def diffs(to_load, loaded_listed, modules_file, changes, sysctl_file):
    """The diff as a list: the modules loaded (before: those given that were loaded already), the
    modules file, the settings that differ (before: their values now), the sysctl file."""
    out = []
    if to_load:
        out.append(dict(before_header='kernel modules loaded (before)', after_header='kernel modules loaded (after)',
                        before=''.join('%s\n' % name for name in loaded_listed),
                        after=''.join('%s\n' % name for name in loaded_listed + to_load)))
    if modules_file:
        out.append(_file_diff(modules_file))
    if changes:
        out.append(dict(before_header='kernel settings now (before)', after_header='kernel settings now (after)',
                        before=''.join('%s = %s\n' % (c.name, _value_text(c.before)) for c in changes),
                        after=''.join('%s = %s\n' % (c.name, c.after) for c in changes)))
    if sysctl_file:
        out.append(_file_diff(sysctl_file))
    return out


def _file_diff(change):
    return dict(before_header=change.path, after_header=change.path,
                before=change.before or '', after=change.after or '')


# ---------------------------------------------------------------------------------------------
# the host

class Kernel:
    """The host's kernel and files, all under root ('/' on a host; a scratch directory in tests)."""

    def __init__(self, root='/'):
        self.root = root

    def path(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def _read(self, path):
        with open(self.path(path), encoding='utf-8', errors='replace') as handle:
            return handle.read()

    # settings

    def read_sysctl(self, name):
        """A setting's value now, MISSING or UNREADABLE. Raises KernelSettingsError for a name
        that is a group of settings (a directory)."""
        path = '/proc/sys/' + sysctl_path(name)
        try:
            return self._read(path).strip()
        except FileNotFoundError:
            return MISSING
        except NotADirectoryError:
            return MISSING
        except IsADirectoryError:
            raise KernelSettingsError('%s is a group of settings (%s is a directory), not one setting' % (name, path))
        except PermissionError:
            return UNREADABLE

    def write_sysctl(self, name, value):
        """Give the kernel a setting's value. Raises KernelSettingsError saying what the kernel said."""
        path = '/proc/sys/' + sysctl_path(name)
        try:
            handle = os.open(self.path(path), os.O_WRONLY)
        except FileNotFoundError:
            raise KernelSettingsError('%s: no such setting on this host (%s is missing)' % (name, path))
        except OSError as exc:
            raise KernelSettingsError('%s: cannot open %s to set it (%s)' % (name, path, exc.strerror))
        try:
            os.write(handle, (value + '\n').encode('utf-8'))
        except OSError as exc:
            raise KernelSettingsError('%s: the kernel refused the value %r (%s)' % (name, value, exc.strerror))
        finally:
            os.close(handle)

    # modules

    def loaded_modules(self):
        """The loaded modules' names, or None on a kernel without loadable modules (no /proc/modules)."""
        try:
            return parse_proc_modules(self._read('/proc/modules'))
        except FileNotFoundError:
            return None

    def builtin_modules(self, names):
        """Those of names (as module_key gives them) that are built into the kernel: a module the
        kernel has in /sys/module and does not list as loaded, or one of modules.builtin."""
        found = set(name for name in names if os.path.isdir(self.path('/sys/module/' + name)))
        if len(found) < len(set(names)):
            try:
                release = self._read('/proc/sys/kernel/osrelease').strip()
                found |= parse_modules_builtin(self._read('/lib/modules/%s/modules.builtin' % release)) & set(names)
            except OSError:
                pass
        return found

    # files

    def read_file(self, path):
        """A file's text, or None when there is none. Raises KernelSettingsError when it cannot be read."""
        try:
            return self._read(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KernelSettingsError('cannot read %s: %s' % (path, exc.strerror))

    def write_file(self, module, path, text):
        """text to the file (atomically: a temporary file beside it, then a rename, parents made), or
        with None the file removed."""
        target = self.path(path)
        if text is None:
            if os.path.lexists(target):
                os.unlink(target)
            return
        directory = os.path.dirname(target)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        handle, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(target))
        with os.fdopen(handle, 'w', encoding='utf-8') as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        module.atomic_move(tmp, target)


# ---------------------------------------------------------------------------------------------
# the module

def kernel_settings_spec():
    """lvs.cluster.kernel_settings's options, as AnsibleModule's keyword arguments."""
    return dict(argument_spec=dict(
        sysctls=dict(type='list', elements='dict', default=[], options=dict(
            name=dict(type='str', required=True),
            value=dict(type='raw', required=True),
        )),
        sysctl_file=dict(type='path'),
        modules=dict(type='list', elements='str', default=[]),
        modules_file=dict(type='path'),
        header=dict(type='str', default=''),
    ), supports_check_mode=True)


def _missing_message(names, what='no such kernel setting on this host'):
    return ('%s: %s (a typo, an interface that does not exist, or a setting of a kernel module that is not '
            'loaded: list the module in modules, or load it first)' % (what, ', '.join(names)))


def ensure_kernel_settings(module, _root='/'):
    """Make the kernel's settings and loaded modules what the options say, now and at boot: one
    read of the state, one plan, one report; then, unless in check mode, load the modules
    (one modprobe for all), set the settings and write the two files. _root: where /proc, /sys and
    the files are (tests only)."""
    params = module.params
    kernel = Kernel(_root)
    sysctls, errors = check_sysctls(params['sysctls'])
    modules, module_errors = check_modules(params['modules'])
    errors += module_errors
    if errors:
        module.fail_json(msg='; '.join(errors), errors=errors)

    try:
        # modules: loaded, else built in
        to_load, loaded_listed = [], []
        if modules:
            loaded = kernel.loaded_modules()
            keys = [module_key(name) for name in modules]
            present = (loaded or set()) | kernel.builtin_modules([key for key in keys if key not in (loaded or ())])
            to_load = plan_modules(modules, present)
            loaded_listed = [name for name in modules if name not in to_load]
            if to_load and loaded is None:
                module.fail_json(msg='cannot load %s: this kernel has no loadable module support (/proc/modules is missing)'
                                     ' and %s built in' % (', '.join(to_load), 'it is not' if len(to_load) == 1 else 'they are not'))
        # settings
        current = dict((name, kernel.read_sysctl(name)) for name, dummy in sysctls)
        changes = plan_sysctls(sysctls, current)
        # files
        header = params['header']
        modules_file, sysctl_file = [
            file_change(path, kernel.read_file(path), text) if path else None
            for path, text in ((params['modules_file'], render_modules_file(modules, header)),
                               (params['sysctl_file'], render_sysctl_file(sysctls, header)))]
    except KernelSettingsError as exc:
        module.fail_json(msg=str(exc))

    missing = [c.name for c in changes if c.before == MISSING]
    if missing and module.check_mode:
        module.warn('check mode: %s; shown as to be set' % _missing_message(missing, 'not on this host yet'))
    elif missing and not to_load:
        # nothing could make them appear: fail before anything changes
        module.fail_json(msg=_missing_message(missing), missing=missing)

    def report(changes):
        result = dict(changed=bool(to_load or changes or modules_file or sysctl_file),
                      modules_loaded=list(to_load), sysctls_changed=[c.name for c in changes])
        if module._diff:
            result['diff'] = diffs(to_load, loaded_listed, modules_file, changes, sysctl_file)
        return result

    result = report(changes)
    if module.check_mode:
        module.exit_json(**result)

    if to_load:
        modprobe = module.get_bin_path('modprobe', required=True)
        rc, out, err = module.run_command([modprobe, '-a'] + to_load, environ_update={'LANG': 'C', 'LC_ALL': 'C'})
        now = kernel.loaded_modules() or set()
        not_loaded = [name for name in to_load if module_key(name) not in now]
        if rc != 0:
            module.fail_json(msg='modprobe could not load %s: %s' % (', '.join(not_loaded or to_load), (err or out).strip()),
                             rc=rc, stdout=out, stderr=err, cmd=[modprobe, '-a'] + to_load,
                             modules_loaded=[name for name in to_load if name not in not_loaded])
        absent = set(not_loaded) - kernel.builtin_modules([module_key(name) for name in not_loaded])
        if absent:
            module.warn('modprobe loaded %s, but no module of that name shows in /proc/modules: an alias? Give the '
                        'module\'s own name (modinfo -F name NAME), else every run loads it again' % ', '.join(sorted(absent)))
        if missing:
            # settings a module brings: read again now that the modules are there
            current.update((name, kernel.read_sysctl(name)) for name in missing)
            changes = plan_sysctls(sysctls, current)
            still = [c.name for c in changes if c.before == MISSING]
            if still:
                module.fail_json(msg=_missing_message(still) + ' (the modules given were loaded: %s)' % ', '.join(to_load),
                                 missing=still, modules_loaded=list(to_load))
            result = report(changes)

    done = []
    for change in changes:
        try:
            kernel.write_sysctl(change.name, change.after)
        except KernelSettingsError as exc:
            module.fail_json(msg='%s (set before it: %s; no file was written)' % (exc, ', '.join(done) or 'none'),
                             sysctls_changed=done, modules_loaded=list(to_load))
        done.append(change.name)
        now = kernel.read_sysctl(change.name)
        if now != UNREADABLE and not values_equal(now, change.after):
            module.warn('%s was set to %s, but the kernel shows %s' % (change.name, change.after, _value_text(now)))
    for change in (modules_file, sysctl_file):
        if change:
            try:
                kernel.write_file(module, change.path, change.after)
            except OSError as exc:
                module.fail_json(msg='cannot write %s: %s' % (change.path, exc.strerror or exc), **result)
    module.exit_json(**result)
