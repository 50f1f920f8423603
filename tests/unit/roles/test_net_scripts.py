"""The boot scripts (lvs-director-net, lvs-realserver-net) with ip and iptables replaced by stubs:
one step that fails does not stop the others, and the script then exits 1 naming it.

The stubs log every call and fail the calls that match $STUB_FAIL, so nothing touches the network.
"""

from __future__ import annotations

import os
import subprocess

from conftest import REPO

DIRECTOR = os.path.join(REPO, 'roles/director/files/usr/local/sbin/lvs-director-net')
REALSERVER = os.path.join(REPO, 'roles/realserver/files/usr/local/sbin/lvs-realserver-net')

# ip: no address is on the host, every route goes through eth0, links other than tunl0 exist (up).
STUB = r'''#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
case " $* " in *" $STUB_FAIL "*) echo "stub: refused: $*" >&2; exit 2 ;; esac
case "$(basename "$0") $*" in
    "ip -o route get "*) echo "$4 dev eth0 src 198.18.0.144 uid 0" ;;
    "ip -o link show dev tunl0") exit 1 ;;
    "ip -o link show dev "*) echo "1: $5: <LOOPBACK,UP,LOWER_UP> mtu 65536" ;;
    iptables*" -C "*) exit 1 ;;
esac
exit 0
'''


def run(script, args, tmp_path, fail=''):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    for name in ('ip', 'iptables', 'ip6tables'):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / 'calls'
    log.write_text('')
    env = dict(os.environ, LVS_NET_PATH=str(bin_dir), STUB_LOG=str(log), STUB_FAIL=fail)
    proc = subprocess.run(['/bin/sh', script] + args, env=env, capture_output=True, text=True, check=False)
    return proc, log.read_text().splitlines()


def test_director_net_puts_the_rest_in_place_when_one_vip_fails(tmp_path):
    state = tmp_path / 'director.state'
    proc, calls = run(DIRECTOR, ['--state=%s' % state, '--vip=198.18.0.10', '--vip=198.18.0.11',
                                 '--masquerade=198.18.1.0/24'], tmp_path, fail='198.18.0.10/32')
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == 'lvs-director-net: failed: VIP 198.18.0.10'
    assert 'ip addr add 198.18.0.11/32 dev eth0' in calls
    assert any(call.startswith('iptables -w 10 -t nat -A POSTROUTING -s 198.18.1.0/24') for call in calls)
    assert state.read_text() == 'vip 198.18.0.11/32 eth0\nmasquerade 198.18.1.0/24\n'


def test_director_net_all_well_exits_0(tmp_path):
    proc, _calls = run(DIRECTOR, ['--vip=198.18.0.10@eth1', '--masquerade=198.18.1.0/24'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['add VIP 198.18.0.10/32 on eth1', 'add MASQUERADE for 198.18.1.0/24']


def test_director_net_check_changes_nothing(tmp_path):
    proc, calls = run(DIRECTOR, ['--check', '--vip=198.18.0.10', '--masquerade=198.18.1.0/24'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['add VIP 198.18.0.10/32 on eth0', 'add MASQUERADE for 198.18.1.0/24']
    assert not [call for call in calls if ' add ' in call or ' -A ' in call]


def test_director_net_only_one_kind_keeps_the_others_state(tmp_path):
    state = tmp_path / 'director.state'
    state.write_text('vip 198.18.0.9/32 eth0\nmasquerade 198.18.9.0/24\n')
    proc, calls = run(DIRECTOR, ['--state=%s' % state, '--only=vip', '--vip=198.18.0.10', '--masquerade=198.18.1.0/24'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not [call for call in calls if call.startswith('iptables')]
    assert state.read_text() == 'vip 198.18.0.10/32 eth0\nmasquerade 198.18.9.0/24\n'


def test_realserver_net_puts_the_rest_in_place_when_tunl0_is_missing(tmp_path):
    proc, calls = run(REALSERVER, ['--up=tunl0', '--address=198.18.0.10@lo', '--address=198.18.0.11@tunl0',
                                   '--gateway=198.18.1.130'], tmp_path, fail='198.18.0.11/32')
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == 'lvs-realserver-net: failed: tunl0 up; 198.18.0.11 on tunl0'
    assert 'ip addr add 198.18.0.10/32 dev lo' in calls
    assert 'ip -4 route replace default via 198.18.1.130' in calls


def test_realserver_net_check_changes_nothing(tmp_path):
    proc, calls = run(REALSERVER, ['--check', '--up=tunl0', '--address=198.18.0.10@lo', '--gateway=198.18.1.130'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['set tunl0 up (once its module is loaded)', 'add 198.18.0.10/32 on lo',
                                        'default route via 198.18.1.130']
    assert not [call for call in calls if ' add ' in call or ' replace ' in call]
