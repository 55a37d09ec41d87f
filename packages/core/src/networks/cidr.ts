// Subnets compared as numbers: whether two CIDRs (of one family) overlap.

function parseCidr(c: string): { v6: boolean; bits: bigint; prefix: number } | undefined {
  const [addr, p] = c.split('/')
  if (!addr || p === undefined) return undefined
  const prefix = Number(p)
  if (addr.includes(':')) {
    const [head = '', tail = ''] = addr.split('::')
    const h = head ? head.split(':') : []
    const t = tail ? tail.split(':') : []
    const groups = addr.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
    let bits = 0n
    for (const g of groups) bits = (bits << 16n) | BigInt(parseInt(g || '0', 16))
    return { v6: true, bits, prefix }
  }
  let bits = 0n
  for (const o of addr.split('.')) bits = (bits << 8n) | BigInt(Number(o))
  return { v6: false, bits, prefix }
}

export function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a)
  const y = parseCidr(b)
  if (!x || !y || x.v6 !== y.v6) return false
  const width = x.v6 ? 128n : 32n
  const p = BigInt(Math.min(x.prefix, y.prefix))
  return x.bits >> (width - p) === y.bits >> (width - p)
}
