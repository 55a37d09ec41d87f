// The sandbox of the network tests: nothing they do touches the real host's interfaces,
// routes or firewall. Each script runs in a child started under `unshare --net --mount --pid`
// as the "host": a network namespace of its own (only lo, then what the test makes), a mount
// namespace with its own tmpfs on /run (the containers' state, the allocations, the
// resolvers, nftables' table lives in the namespace), its own network store, and its own
// /etc/resolv.conf naming the upstream. The "upstream" is a further namespace (`ip netns`,
// named `up`) joined to the host by the veth up0/eth0, on documentation ranges: the host is
// 198.51.100.1 and 2001:db8:100::1, the upstream .2 and ::2, and the host's default routes
// point at it. Traffic goes to loopback and to these namespaces only.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { cli, fixtureRootfs, isRoot, repoRoot, usernsSkipReason } from './helpers.js'

export const HOST4 = '198.51.100.1'
export const UPSTREAM4 = '198.51.100.2'
export const HOST6 = '2001:db8:100::1'
export const UPSTREAM6 = '2001:db8:100::2'
/** The probes (serve, probe, wait), as a path in containers (bound there with `$TOOLV`) and on the host. */
export const tool = join(repoRoot, 'test', 'net-tool.py')

function missing(): string | undefined {
  for (const t of ['unshare', 'ip', 'nft']) {
    const r = spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' })
    if (r.status !== 0) return `needs ${t} (util-linux, iproute2, nftables)`
  }
  if (spawnSync('/usr/bin/python3', ['-c', '1']).status !== 0) return 'needs /usr/bin/python3 for the probes'
  return undefined
}

/** Why the network tests cannot run here, if they cannot (bridge networks need root). */
export const netSkipReason = usernsSkipReason ?? (isRoot ? missing() : 'bridge networks need root')

const prelude = String.raw`
set -u
mount --make-rprivate /
mount -t tmpfs -o mode=755 tmpfs /run
printf 'nameserver ${UPSTREAM4}\n' > "$SANDBOX/resolv.conf"
mount --bind "$SANDBOX/resolv.conf" /etc/resolv.conf
ip link set lo up
ip netns add up
ip link add up0 type veth peer name eth0 netns up
ip addr add ${HOST4}/24 dev up0
ip addr add ${HOST6}/64 dev up0 nodad
ip link set up0 up
ip -n up link set lo up
ip -n up addr add ${UPSTREAM4}/24 dev eth0
ip -n up addr add ${UPSTREAM6}/64 dev eth0 nodad
ip -n up link set eth0 up
ip route add default via ${UPSTREAM4}
ip -6 route add default via ${UPSTREAM6}
# until the kernel has acted on up0's carrier, what the host sends through it is dropped
for i in $(seq 100); do ip -br link show up0 | grep -q ' UP ' && break; sleep 0.02; done
ns() { node "$NS_CLI" "$@"; }
up() { ip netns exec up "$@"; }
py() { /usr/bin/python3 "$TOOL" "$@"; }
# Each command's output between markers: the test reads them by name.
mark() { echo "@@ $1"; }
# At the end, whatever the script did: its containers removed (their cgroups are the real
# host's), then everything left in the sandbox's PID namespace ends with it.
cleanup() { for c in $(ns ps -aq 2>/dev/null); do ns rm -f "$c" >/dev/null 2>&1; done; }
trap cleanup EXIT
`

export interface SandboxResult {
  code: number | null
  stdout: string
  stderr: string
  /** The output after `mark NAME`, up to the next mark (trimmed). */
  at(name: string): string
}

/**
 * Run `script` (bash) as the sandbox host. In it: `ns` (the CLI), `up CMD` (in the upstream),
 * `py` (the probes, on the host), `$TOOL` and `$TOOLV` (`-v` binding the probes at /t.py in a
 * container), `$FIXTURE` (the fixture rootfs), `mark NAME` (labels what follows in the output). The sandbox ends with the script:
 * every namespace, device, rule and resolver of it goes with it.
 */
export function sandbox(script: string, timeoutMs = 120_000): SandboxResult {
  const dir = mkdtempSync(join(tmpdir(), 'ns-net-test-'))
  // Containers' root is nobody on the host: it must be able to reach the files given it here.
  chmodSync(dir, 0o755)
  try {
    writeFileSync(join(dir, 'script.sh'), prelude + script)
    const args = ['--net', '--mount', '--pid', '--mount-proc', '--fork', 'bash', join(dir, 'script.sh')]
    const r = spawnSync('unshare', args, {
      encoding: 'utf8',
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: process.env.HOME ?? '/root',
        SANDBOX: dir,
        NS_CLI: cli,
        NS_NETWORK_STORE: join(dir, 'networks'),
        TOOL: tool,
        TOOLV: `${tool}:/t.py:ro`,
        FIXTURE: fixtureRootfs,
      },
    })
    const stdout = r.stdout ?? ''
    return {
      code: r.status,
      stdout,
      stderr: r.stderr ?? '',
      at(name: string) {
        const parts = stdout.split(/^@@ (\S+)\n/m)
        const i = parts.indexOf(name)
        return i < 0 ? `(no mark ${name})` : (parts[i + 1] ?? '').trim()
      },
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
