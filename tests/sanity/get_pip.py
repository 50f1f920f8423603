"""Offline stand-in for the get-pip.py script that ansible-test downloads.

ansible-test (``_util/target/setup/requirements.py``, ``bootstrap()``) bootstraps pip into each
empty virtual environment it creates by running a get-pip script that it fetches from a host
this project cannot reach. It looks for that script first in its cache,
``~/.ansible/test/cache/get_pip_<version>.py``; ``tests/sanity/run`` points ``HOME`` at
``.cache/sanity/home`` and copies this file there under that name, beside the pip wheel it
fetched from PyPI (``pip download pip==<version>``).

ansible-test runs it through its ``quiet_pip.py`` wrapper (``GET_PIP`` = this file) as::

    python quiet_pip.py --disable-pip-version-check pip==25.2 --no-setuptools --no-wheel

Like the real get-pip.py, this runs pip straight from its wheel and installs the requested
packages, but from the wheels beside this file only (``--no-index``), so no network is used.
"""

from __future__ import annotations

import glob
import os
import sys


def main() -> int:
    """Install the requested packages from the wheels beside this file."""
    here = os.path.dirname(os.path.abspath(__file__))
    # get-pip.py options that pip itself does not know
    args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]

    wanted = [arg.split('==', 1)[1] for arg in args if arg.startswith('pip==')]
    pattern = 'pip-%s-py3-none-any.whl' % (wanted[0] if wanted else '*')
    wheels = sorted(glob.glob(os.path.join(here, pattern)))

    if not wheels:
        sys.stderr.write('get-pip stand-in: no wheel %s in %s; run tests/sanity/run to fetch it\n' % (pattern, here))
        return 1

    # pip can run from its own wheel: that is how the real get-pip.py works too
    sys.path.insert(0, wheels[-1])

    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    return pip_main(['install', '--no-index', '--find-links', here] + args)


if __name__ == '__main__':
    sys.exit(main())
