"""Run the scenario's testinfra tests over `podman exec`, one command per call.

Molecule hands testinfra its inventory with ``ansible_connection: podman``, which testinfra's
ansible backend does not map to a backend of its own: every command would then run as an Ansible
module (seconds each in the lab). This turns the inventory's host patterns into ``podman://NAME``
specs instead. A test module may choose its hosts with ``testinfra_hosts = ["clients"]`` (any
Ansible host pattern); without it, it runs on every host.

Other scenarios: copy this file beside your tests (pytest only finds conftest.py files on the
tests' own path).
"""

import functools
import os

import pytest
from testinfra.utils.ansible_runner import AnsibleRunner


@functools.cache
def _runner():
    return AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])


def podman_hosts(pattern="all"):
    """testinfra host specs for the inventory hosts matching an Ansible pattern."""
    return [f"podman://{name}" for name in sorted(_runner().get_hosts(pattern))]


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    if "MOLECULE_INVENTORY_FILE" not in os.environ:
        return
    wanted = getattr(metafunc.module, "testinfra_hosts", ["all"])
    specs = []
    for pattern in wanted:
        specs.extend([pattern] if "://" in pattern else podman_hosts(pattern))
    metafunc.module.testinfra_hosts = specs
