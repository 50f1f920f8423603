"""What the lab's own tests (run_test.py, session_test.py) share."""

import os
import shutil
import threading

import pytest


@pytest.fixture(autouse=True, scope='module')
def on_the_host_as_root():
    """These tests boot the lab: without what it needs they fail, they are not skipped (a lab
    stage that passes without a lab would prove nothing)."""
    if os.geteuid() != 0 or shutil.which('linux.uml') is None or os.environ.get('LVS_LAB') == '1':
        pytest.fail('the lab tests need root, linux.uml (tests/setup), and the host (not the lab '
                    'itself)', pytrace=False)


def at_once(function, names):
    """{name: function(name)}, each call in a thread of its own, all started before any is awaited."""
    results = {}

    def one(name):
        results[name] = function(name)

    threads = [threading.Thread(target=one, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
