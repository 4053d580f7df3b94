// Where a webhook may be delivered. A tenant chooses the URL, so by default it may not point into
// the server's own network: loopback, private, carrier-grade NAT, link-local (the cloud metadata
// service at 169.254.169.254 included), multicast and reserved addresses are refused, for literal
// IPs at validation and for names after resolution. A delivery connects to the very address that
// was checked (the lookup is pinned), so a name that resolves differently the second time (DNS
// rebinding) cannot slip past. WEBHOOK_ALLOW_PRIVATE_NETWORKS lets an operator allow intranet
// receivers.
import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
] as const) {
  blocked.addSubnet(net, bits, 'ipv6');
}

/** Why an address may not receive webhooks, or null when it may. */
export function addressProblem(address: string): string | null {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4) return addressProblem(v4);
  }
  return blocked.check(address, family === 4 ? 'ipv4' : 'ipv6') ? `${address} is a loopback, private, link-local or reserved address` : null;
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), -compatible or NAT64 (64:ff9b::/96) address. */
function embeddedIpv4(address: string): string | null {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1] as string;
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!hex) return null;
  const hi = Number.parseInt(hex[1] as string, 16);
  const lo = Number.parseInt(hex[2] as string, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export type Lookup = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export const systemLookup: Lookup = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve(addrs))));

export interface AddressPolicy {
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS: every address is allowed. */
  allowPrivate: boolean;
  lookup: Lookup;
}

/** A host without brackets ([::1] → ::1). */
const bareHost = (u: URL) => u.hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * The addresses a webhook URL may be delivered to, checked: every address the name resolves to
 * must be allowed (one private answer among public ones refuses the whole name). Throws with the
 * reason; never connects.
 */
export async function allowedAddresses(url: URL, policy: AddressPolicy): Promise<Array<{ address: string; family: number }>> {
  const host = bareHost(url);
  const literal = isIP(host);
  const addrs = literal
    ? [{ address: host, family: literal }]
    : await policy.lookup(host).catch(() => {
        throw new WebhookAddressError(`${host} does not resolve`);
      });
  if (addrs.length === 0) throw new WebhookAddressError(`${host} does not resolve`);
  if (!policy.allowPrivate) {
    for (const a of addrs) {
      const problem = addressProblem(a.address);
      // a name's addresses are not repeated to the tenant: the refusal must not map the server's network
      if (problem) throw new WebhookAddressError(literal ? problem : `${host} resolves to a loopback, private, link-local or reserved address`);
    }
  }
  return addrs;
}

/** The policy of a deployment: its setting and the system resolver. */
export function addressPolicy(cfg: { allowPrivateNetworks: boolean }): AddressPolicy {
  return { allowPrivate: cfg.allowPrivateNetworks, lookup: systemLookup };
}

export class WebhookAddressError extends Error {
  override readonly name = 'WebhookAddressError';
}
