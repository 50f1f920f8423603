"""Make `ansible_collections.lvs.cluster` importable from the repository for plain pytest runs."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(REPO, 'playbooks', 'collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

FIXTURES = os.path.join(HERE, 'fixtures')


def fixture_text(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()
