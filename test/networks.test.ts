// Container networks with the real kernel and real packets, inside a sandbox host of the test's
// own (see netns.ts): bridges, NAT to a simulated upstream, published ports, isolation between
// networks, names by DNS, and everything given back.
import { describe, expect } from 'vitest'

import { itWhen } from './helpers.js'
import { HOST4, HOST6, netSkipReason, sandbox, UPSTREAM4, UPSTREAM6 } from './netns.js'

const itNet = itWhen(netSkipReason)

/** What is left of ns on the sandbox host: its devices, firewall elements, allocations, records. */
const leftovers = String.raw`
mark devices; ip -br link | awk '{print $1}' | grep -E '^ns[0-9a-f]{12}' | sort || true
mark elements; nft -j list table inet ns 2>/dev/null | grep -o '"comment": "ns:[^"]*"' | sort -u || true
mark allocations; ls /run/ns/net/ipam/*/holders 2>/dev/null | grep -v ':$' | grep . || true
mark records; cat /run/ns/dns/*.json 2>/dev/null | grep -o '"id": *"[^"]*"' || true
mark folders; ls /run/ns/net/containers 2>/dev/null || true
`

describe('bridge networks', () => {
  itNet(
    'containers on one network reach each other by name and by address; the outside sees the host, through NAT',
    () => {
      const r = sandbox(String.raw`
ns network create web --subnet 10.89.0.0/24 >/dev/null
ns run -d --name srv --network web --network-alias api -v "$TOOLV" -- /usr/bin/python3 /t.py serve tcp 7000 >/dev/null
ns exec srv /usr/bin/python3 /t.py wait tcp 127.0.0.1 7000 >/dev/null
mark by-name; ns run --network web -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp srv 7000
mark by-alias; ns run --network web -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp api.dns.ns 7000
mark by-address; ns run --network web --ip 10.89.0.77 -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp 10.89.0.2 7000
mark hosts; ns exec srv cat /etc/hosts
mark resolv; ns exec srv cat /etc/resolv.conf
mark hostname; ns exec srv cat /etc/hostname
up /usr/bin/python3 "$TOOL" serve tcp 7001 & up /usr/bin/python3 "$TOOL" serve udp 7002 &
py wait tcp ${UPSTREAM4} 7001 >/dev/null
mark out-tcp; ns run --network web -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp ${UPSTREAM4} 7001
mark out-udp; ns run --network web -v "$TOOLV" -- /usr/bin/python3 /t.py probe udp ${UPSTREAM4} 7002
mark inbound; up ip route add 10.89.0.0/24 via ${HOST4}; up /usr/bin/python3 "$TOOL" probe tcp 10.89.0.2 7000
up /usr/bin/python3 "$TOOL" dns udp 53 192.0.2.99 &
sleep 0.3
mark forwarded; ns run --network web -- busybox nslookup example.test 2>&1 | grep -A1 '^Name:' | grep -o '192\.0\.2\.99'
printf '10.1.2.3 mine\n' > "$SANDBOX/hosts"
mark own-hosts; ns run --network web -v "$SANDBOX/hosts:/etc/hosts:ro" -- cat /etc/hosts
mark rootfs; ns run --network web --rootfs "$FIXTURE" -- sh -c 'cat /etc/resolv.conf; cat /etc/hostname'
`)
      expect(r.at('by-name'), r.stderr).toMatch(/^10\.89\.0\.\d+$/)
      expect(r.at('by-name')).not.toBe('10.89.0.2')
      expect(r.at('by-alias')).toMatch(/^10\.89\.0\.\d+$/)
      // The server sees the client's own address (--ip): no NAT inside a network.
      expect(r.at('by-address')).toBe('10.89.0.77')
      expect(r.at('hosts')).toMatch(/^10\.89\.0\.2\tsrv api$/m)
      expect(r.at('resolv')).toBe('nameserver 10.89.0.1\nsearch dns.ns\noptions ndots:0')
      expect(r.at('hostname')).toBe('srv')
      // The upstream sees the host's address, never the container's.
      expect(r.at('out-tcp')).toBe(HOST4)
      expect(r.at('out-udp')).toBe(HOST4)
      expect(r.at('inbound')).toMatch(/^ERR /)
      // What the network's resolver does not know it asks the host's servers (the upstream).
      expect(r.at('forwarded')).toBe('192.0.2.99')
      // A bind of the user's own over /etc/hosts wins over the one ns makes.
      expect(r.at('own-hosts')).toBe('10.1.2.3 mine')
      // A root filesystem of its own gets the files bound the same way.
      expect(r.at('rootfs')).toMatch(/^nameserver 10\.89\.0\.1\nsearch dns\.ns\noptions ndots:0\n[0-9a-f]{12}$/)
    },
  )

  itNet(
    'two networks cannot reach each other; both reach the outside; an internal one has no way out but names',
    () => {
      const r = sandbox(String.raw`
ns network create a --subnet 10.89.1.0/24 >/dev/null
ns network create b --subnet 10.89.2.0/24 >/dev/null
ns network create sealed --subnet 10.89.3.0/24 --internal >/dev/null
ns run -d --name sa --network a -v "$TOOLV" -- /usr/bin/python3 /t.py serve tcp 7000 >/dev/null
ns run -d --name si --network sealed -v "$TOOLV" -- /usr/bin/python3 /t.py serve tcp 7000 >/dev/null
ns exec sa /usr/bin/python3 /t.py wait tcp 127.0.0.1 7000 >/dev/null
ns exec si /usr/bin/python3 /t.py wait tcp 127.0.0.1 7000 >/dev/null
up /usr/bin/python3 "$TOOL" serve tcp 7001 &
py wait tcp ${UPSTREAM4} 7001 >/dev/null
mark b-to-a; ns run --network b -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp 10.89.1.2 7000
mark b-out; ns run --network b -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp ${UPSTREAM4} 7001
mark a-out; ns run --network a -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp ${UPSTREAM4} 7001
mark sealed-name; ns run --network sealed -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp si 7000
mark sealed-out; ns run --network sealed -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp ${UPSTREAM4} 7001
mark sealed-host; py serve tcp 7003 & py wait tcp 127.0.0.1 7003 >/dev/null; ns run --network sealed -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp 10.89.3.1 7003
mark sealed-publish; ns run --network sealed -p 8080:80 -- true 2>&1; echo "exit $?"
up /usr/bin/python3 "$TOOL" dns udp 53 192.0.2.99 &
sleep 0.3
mark forwarded-a; ns run --network a -- busybox nslookup example.test 2>&1 | grep -c '192\.0\.2\.99'
mark forwarded-sealed; ns run --network sealed -- busybox nslookup example.test 2>&1 | grep -c '192\.0\.2\.99'
`)
      expect(r.at('b-to-a'), r.stderr).toMatch(/^ERR /)
      expect(r.at('b-out')).toBe(HOST4)
      expect(r.at('a-out')).toBe(HOST4)
      expect(r.at('sealed-name')).toMatch(/^10\.89\.3\.\d+$/)
      expect(r.at('sealed-out')).toMatch(/^ERR /)
      // Nor does it reach the host itself (only its resolver).
      expect(r.at('sealed-host')).toMatch(/^ERR /)
      // An internal network's resolver answers its names and forwards nothing.
      expect(r.at('forwarded-a')).toBe('1')
      expect(r.at('forwarded-sealed')).toBe('0')
      expect(r.at('sealed-publish')).toBe(
        'ns: --publish: network sealed is internal: it has no published ports\nexit 125',
      )
    },
  )

  itNet(
    'published ports answer from the outside, the host, its 127.0.0.1 and the network itself (hairpin); TCP and UDP',
    () => {
      const r = sandbox(String.raw`
ns network create web --subnet 10.89.4.0/24 >/dev/null
ns run -d --name srv --network web -p 8080:7000 -p 127.0.0.1:8053:7053/udp -p 8100-8101:7100-7101 -p 7200 -v "$TOOLV" -- \
  sh -c '/usr/bin/python3 /t.py serve tcp 7000 & /usr/bin/python3 /t.py serve udp 7053 & /usr/bin/python3 /t.py serve tcp 7100 & /usr/bin/python3 /t.py serve tcp 7101 & exec /usr/bin/python3 /t.py serve tcp 7200' >/dev/null
ns exec srv /usr/bin/python3 /t.py wait tcp 127.0.0.1 7000 >/dev/null
ns exec srv /usr/bin/python3 /t.py wait tcp 127.0.0.1 7200 >/dev/null
mark outside; up /usr/bin/python3 "$TOOL" probe tcp ${HOST4} 8080
mark host; py probe tcp ${HOST4} 8080
mark loopback; py probe tcp 127.0.0.1 8080
mark loopback-udp; py probe udp 127.0.0.1 8053
mark loopback-udp-outside; up /usr/bin/python3 "$TOOL" probe udp ${HOST4} 8053
mark range; py probe tcp 127.0.0.1 8101
mark hairpin; ns run --network web -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp ${HOST4} 8080
mark random; port=$(ns inspect srv | node -e 'const [c] = JSON.parse(require("fs").readFileSync(0)); console.log(c.networks[0].ports.find((p) => p.containerPort === 7200).hostPort)'); py probe tcp 127.0.0.1 "$port"
mark again; ns run --network web -p 8080:80 -- true 2>&1; echo "exit $?"
mark host-busy; py serve tcp 8081 & py wait tcp 127.0.0.1 8081 >/dev/null; ns run --network web -p 8081:80 -- true 2>&1; echo "exit $?"
`)
      // From the outside the container sees the outside's address (DNAT, no masquerade).
      expect(r.at('outside'), r.stderr).toBe(UPSTREAM4)
      expect(r.at('host')).toMatch(/^(198\.51\.100\.1|10\.89\.4\.1)$/)
      expect(r.at('loopback')).toBe('10.89.4.1')
      expect(r.at('loopback-udp')).toBe('10.89.4.1')
      // Published on 127.0.0.1 only: not reachable from another host.
      expect(r.at('loopback-udp-outside')).toMatch(/^ERR /)
      expect(r.at('range')).toBe('10.89.4.1')
      // A neighbour on the same network reaches the host's published port (hairpin NAT).
      expect(r.at('hairpin')).toMatch(/^10\.89\.4\.\d+$/)
      expect(r.at('random')).toBe('10.89.4.1')
      expect(r.at('again')).toBe('ns: ports[0]: host port 8080/tcp is published by container srv already\nexit 125')
      expect(r.at('host-busy')).toBe('ns: ports[0]: host port 8081/tcp is in use on the host\nexit 125')
    },
  )

  itNet('IPv6 as IPv4: neighbours by address and name, NAT to the outside, published ports', () => {
    const r = sandbox(String.raw`
ns network create six --subnet 10.89.6.0/24 --subnet 2001:db8:89::/64 >/dev/null
ns run -d --name srv --network six -p 8080:7000 -v "$TOOLV" -- /usr/bin/python3 /t.py serve tcp 7000 >/dev/null
ns exec srv /usr/bin/python3 /t.py wait tcp ::1 7000 >/dev/null
up /usr/bin/python3 "$TOOL" serve tcp 7001 &
py wait tcp ${UPSTREAM6} 7001 >/dev/null
mark addr; ns exec srv ip -o -6 addr show dev eth0 scope global
mark neighbour; ns run --network six -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp 2001:db8:89::2 7000
mark aaaa; ns run --network six -- busybox nslookup -type=aaaa srv 2>&1 | grep -c '2001:db8:89::2'
mark out6; ns run --network six -v "$TOOLV" -- /usr/bin/python3 /t.py probe tcp ${UPSTREAM6} 7001
mark published6; up /usr/bin/python3 "$TOOL" probe tcp ${HOST6} 8080
`)
    expect(r.at('addr'), r.stderr).toMatch(/inet6 2001:db8:89::2\/64/)
    expect(r.at('neighbour')).toMatch(/^2001:db8:89::\d+$/)
    expect(Number(r.at('aaaa'))).toBeGreaterThan(0)
    expect(r.at('out6')).toBe(HOST6)
    expect(r.at('published6')).toBe(UPSTREAM6)
  })

  itNet(
    'ns owns one nftables table; containers removed, detached or foreground, leave no device, element, allocation, name or folder',
    () => {
      const r = sandbox(String.raw`
${leftovers.replace(/mark (\w+)/g, 'mark before-$1')}
ns network create web --subnet 10.89.7.0/24 >/dev/null
ns run -d --name a --network web -p 8080:80 -- sleep 60 >/dev/null
ns run -d --name b --network web -p 8081:80/udp -- sleep 60 >/dev/null
ns run --network web -p 8082:80 -- true
mark tables; nft list tables
mark during; nft -j list table inet ns | grep -o '"comment": "ns:[^"]*"' | sort -u
mark devices-during; ip -br link | awk '{print $1}' | grep -cE '^ns[0-9a-f]{12}'
ns rm -f a b >/dev/null
${leftovers}
mark rm-net; ns network rm web
mark after-rm; nft list tables; ip -br link | awk '{print $1}' | grep -E '^ns' || true
`)
      expect(r.at('tables'), r.stderr).toBe('table inet ns')
      expect(r.at('during')).toBe('"comment": "ns:a"\n"comment": "ns:b"')
      expect(r.at('devices-during')).toBe('2')
      for (const k of ['devices', 'elements', 'allocations', 'records', 'folders']) {
        expect(r.at(`before-${k}`), k).toBe('')
        expect(r.at(k), k).toBe('')
      }
      expect(r.at('rm-net')).toBe('web')
      expect(r.at('after-rm')).toBe('')
    },
  )

  itNet(
    'runs one after another on a network share one resolver, which exits seconds after the last and leaves no listener, process or file',
    () => {
      const r = sandbox(String.raw`
alive() { s=$(awk '{print $3}' /proc/$1/stat 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ]; }
ns network create web --subnet 10.89.11.0/24 >/dev/null
ns run --network web -- true
first=$(cat /run/ns/dns/web.pid)
mark lingers; alive "$first" && echo alive; ss -Hlnu 'sport = :53' | awk '{print $4}'
mark second; ns run --network web --network-alias api -- /usr/bin/python3 -c "import socket; print(socket.gethostbyname('api.dns.ns'))"
[ "$(cat /run/ns/dns/web.pid)" = "$first" ] && echo same
for i in $(seq 300); do alive "$first" || break; sleep 0.05; done
mark gone; alive "$first" && echo alive || echo gone
mark files; ls /run/ns/dns | grep -v '[.]lock$' || true
mark listeners; ss -Hlntu 'sport = :53' || true
mark log; grep -c 'exiting: no container is left' /run/ns/dns/web.log
ns run --network web -- true
next=$(cat /run/ns/dns/web.pid)
mark rm-net; ns network rm web; alive "$next" && echo alive || echo gone
${leftovers}
`)
      expect(r.at('lingers'), r.stderr).toBe('alive\n10.89.11.1:53')
      // The second run is answered by the resolver the first one started.
      expect(r.at('second')).toMatch(/^10\.89\.11\.\d+\nsame$/)
      expect(r.at('gone')).toBe('gone')
      expect(r.at('files')).toBe('web.log')
      expect(r.at('listeners')).toBe('')
      expect(r.at('log')).toBe('1')
      // A network removed while its resolver lingers stops it at once.
      expect(r.at('rm-net')).toBe('web\ngone')
      for (const k of ['devices', 'elements', 'allocations', 'records', 'folders']) expect(r.at(k), k).toBe('')
    },
  )

  itNet(
    'a helper killed while its container runs leaves what prune gives back: no rule, allocation, device or name',
    () => {
      const r = sandbox(String.raw`
ns network create web --subnet 10.89.8.0/24 >/dev/null
ns run --network web -p 8080:80 -- sleep 60 &
for i in $(seq 100); do nft -j list table inet ns 2>/dev/null | grep -q '"ns:' && [ -e /run/ns/dns/web.json ] && break; sleep 0.05; done
helper=$(pgrep -f 'ns-oci init' | head -1)
mark killed; kill -9 "$helper" && echo yes
# its container goes with it (it dies with its parent); what it took stays behind
for i in $(seq 100); do pgrep -x sleep >/dev/null || break; sleep 0.05; done
mark stale; nft -j list table inet ns | grep -c '"comment": "ns:'
mark prune; ns network prune --keep-networks; echo "exit $?"
${leftovers}
`)
      expect(r.at('killed'), r.stderr).toBe('yes')
      expect(Number(r.at('stale'))).toBeGreaterThan(0)
      expect(r.at('prune')).toBe('exit 0')
      for (const k of ['devices', 'elements', 'allocations', 'records', 'folders']) expect(r.at(k), k).toBe('')
    },
  )

  itNet('16 containers started at once get 16 distinct addresses', () => {
    const r = sandbox(String.raw`
ns network create web --subnet 10.89.9.0/24 >/dev/null
for i in $(seq 16); do ns run -d --name c$i --network web -- sleep 60 > "$SANDBOX/out.$i" 2>&1 & done
wait
mark addresses; for i in $(seq 16); do ns exec c$i ip -o -4 addr show dev eth0 | awk '{print $4}'; done | sort
ns rm -f $(seq -f 'c%g' 16) >/dev/null
${leftovers}
`)
    const addrs = r.at('addresses').split('\n')
    expect(addrs, r.stderr).toHaveLength(16)
    expect(new Set(addrs).size).toBe(16)
    for (const a of addrs) expect(a).toMatch(/^10\.89\.9\.\d+\/24$/)
    for (const k of ['devices', 'elements', 'allocations', 'records', 'folders']) expect(r.at(k), k).toBe('')
  })

  itNet(
    '--network container:ID sees its interfaces; --ipc container:ID its SysV objects; not running is an error',
    () => {
      const r = sandbox(String.raw`
ns network create web --subnet 10.89.10.0/24 >/dev/null
ns run -d --name a --network web -- sh -c 'ipcmk -M 4096 >/dev/null; exec sleep 60' >/dev/null
for i in $(seq 100); do ns exec a sh -c 'ipcs -m | grep -q 4096' && break; sleep 0.05; done
mark net; ns run --network container:a -- ip -o -4 addr show dev eth0
mark ipc; ns run --ipc container:a -- sh -c 'ipcs -m | grep -c 4096'
mark ipc-own; ns run -- sh -c 'ipcs -m | grep -c 4096'
ns run -d --name stopped -- true >/dev/null; ns wait stopped >/dev/null
mark not-running; ns run --network container:stopped -- true 2>&1; echo "exit $?"
mark none; ns run --network container:nope -- true 2>&1; echo "exit $?"
`)
      expect(r.at('net'), r.stderr).toMatch(/inet 10\.89\.10\.2\/24/)
      expect(r.at('ipc')).toBe('1')
      expect(r.at('ipc-own')).toBe('0')
      expect(r.at('not-running')).toMatch(/^ns: --network: container stopped is not running \(it is stopped\)/)
      expect(r.at('none')).toBe('ns: --network: no container nope\nexit 125')
    },
  )

  itNet('errors name the field: a bad subnet, an address outside it, a network in use, an unknown one', () => {
    const r = sandbox(String.raw`
mark host-bits; ns network create x --subnet 10.89.11.1/24 2>&1; echo "exit $?"
mark route; ns network create y --subnet 198.51.100.0/25 2>&1; echo "exit $?"
ns network create web --subnet 10.89.11.0/24 >/dev/null
mark overlap; ns network create z --subnet 10.89.11.128/25 2>&1; echo "exit $?"
mark outside; ns run --network web --ip 10.89.12.5 -- true 2>&1; echo "exit $?"
mark family; ns run --network web --ip 2001:db8::5 -- true 2>&1; echo "exit $?"
mark taken; ns run -d --name a --network web --ip 10.89.11.9 -- sleep 60 >/dev/null; ns run --network web --ip 10.89.11.9 -- true 2>&1; echo "exit $?"
mark in-use; ns network rm web 2>&1; echo "exit $?"
mark unknown; ns run --network nowhere -- true 2>&1; echo "exit $?"
mark none-port; ns run -p 8080:80 -- true 2>&1; echo "exit $?"
mark rootless; setpriv --reuid 65534 --regid 65534 --clear-groups env HOME=/tmp node "$NS_CLI" run --network bridge -- true 2>&1; echo "exit $?"
`)
    expect(r.at('host-bits'), r.stderr).toMatch(/^ns: --subnet: 10\.89\.11\.1\/24 has host bits set/)
    expect(r.at('route')).toMatch(/^ns: --subnet: 198\.51\.100\.0\/25 overlaps the host's route/)
    expect(r.at('overlap')).toMatch(/^ns: --subnet: .*overlaps network web/)
    expect(r.at('outside')).toBe(
      'ns: --ip "10.89.12.5": 10.89.12.5 is outside network web\'s subnet 10.89.11.0/24\nexit 125',
    )
    expect(r.at('family')).toBe('ns: --ip "2001:db8::5": network web has no IPv6 subnet\nexit 125')
    expect(r.at('taken')).toMatch(/10\.89\.11\.9.*(in use|taken|allocated)/)
    expect(r.at('in-use')).toMatch(/^ns: network web is in use by a\n/)
    expect(r.at('unknown')).toMatch(/^ns: --network: no network named nowhere/)
    expect(r.at('none-port')).toMatch(/^ns: --publish: needs a bridge network/)
    // A normal user is told what to use instead of a bridge.
    expect(r.at('rootless')).toBe(
      'ns: --network: bridge networks need root\n' +
        'ns: hint: bridge networks need root; rootless networking (pasta, slirp4netns) is not supported yet: ' +
        'use --network none (loopback only) or --network host\nexit 125',
    )
  })
})
