// The webhook address policy on literal addresses and on names through a resolver stub: no
// network traffic, no connection. And a delivery connects to the address that was checked.
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { type AddressPolicy, addressProblem, allowedAddresses, WebhookAddressError } from './address-policy';
import { postSigned } from './signing';

const stub = (table: Record<string, string[]>) => {
  const asked: string[] = [];
  const lookup: AddressPolicy['lookup'] = async (host) => {
    asked.push(host);
    const addrs = table[host];
    if (!addrs) throw new Error('ENOTFOUND');
    return addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { lookup, asked };
};

describe('addressProblem', () => {
  it.each([
    '127.0.0.1',
    '127.1.2.3',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.0.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd00:ec2::254',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::a9fe:a9fe',
    'ff02::1',
  ])('refuses %s', (address) => {
    expect(addressProblem(address)).toMatch(/loopback, private, link-local or reserved/);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '192.169.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows %s', (address) => {
    expect(addressProblem(address)).toBeNull();
  });
});

describe('allowedAddresses', () => {
  const strict = (table: Record<string, string[]>) => {
    const s = stub(table);
    return { policy: { allowPrivate: false, lookup: s.lookup }, asked: s.asked };
  };

  it('checks every address a name resolves to, and names none of them in the refusal', async () => {
    const { policy } = strict({
      'metadata.google.internal': ['169.254.169.254'],
      'mixed.example': ['93.184.216.34', '10.0.0.7'],
      'ok.example': ['93.184.216.34'],
    });
    await expect(allowedAddresses(new URL('http://metadata.google.internal/x'), policy)).rejects.toThrow(WebhookAddressError);
    const err = (await allowedAddresses(new URL('http://mixed.example/x'), policy).catch((e: Error) => e)) as Error;
    expect(err.message).toBe('mixed.example resolves to a loopback, private, link-local or reserved address');
    expect(err.message).not.toMatch(/10\.0\.0\.7/);
    expect(await allowedAddresses(new URL('https://ok.example/hook'), policy)).toEqual([{ address: '93.184.216.34', family: 4 }]);
  });

  it('refuses literal addresses without asking the resolver', async () => {
    const { policy, asked } = strict({});
    for (const url of ['http://127.0.0.1:8080/', 'http://[::1]/', 'http://169.254.169.254/', 'http://[::ffff:10.0.0.1]/']) {
      await expect(allowedAddresses(new URL(url), policy), url).rejects.toThrow(WebhookAddressError);
    }
    expect(asked).toEqual([]);
  });

  it('allows anything with WEBHOOK_ALLOW_PRIVATE_NETWORKS', async () => {
    const s = stub({ 'intranet.corp': ['10.0.0.7'] });
    expect(await allowedAddresses(new URL('http://intranet.corp/'), { allowPrivate: true, lookup: s.lookup })).toEqual([{ address: '10.0.0.7', family: 4 }]);
  });
});

describe('postSigned', () => {
  it('connects to the address that was checked, not to what the name resolves to later', async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.statusCode = 204;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    // the name exists only in the stub: the connection can only have gone to the checked address
    let answers = 0;
    const lookup: AddressPolicy['lookup'] = async () => (answers++ === 0 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '10.9.9.9', family: 4 }]);
    const r = await postSigned(`http://rebind.invalid:${port}/hook`, 'whsec_AAAA', 'evt_1', '{}', 2000, { allowPrivate: true, lookup });
    expect(r).toEqual({ statusCode: 204, error: null });
    expect(hits).toBe(1);
    expect(answers).toBe(1);
    await new Promise((res) => server.close(res));
  });

  it('reports a refused address and an unreachable receiver without details', async () => {
    const lookup: AddressPolicy['lookup'] = async () => [{ address: '10.0.0.1', family: 4 }];
    expect(await postSigned('http://internal.invalid/x', 'whsec_AAAA', 'e', '{}', 500, { allowPrivate: false, lookup })).toEqual({
      statusCode: null,
      error: 'address not allowed',
    });
    const none: AddressPolicy['lookup'] = async () => {
      throw new Error('ENOTFOUND internal.invalid');
    };
    expect(await postSigned('http://internal.invalid/x', 'whsec_AAAA', 'e', '{}', 500, { allowPrivate: false, lookup: none })).toEqual({
      statusCode: null,
      error: 'unreachable',
    });
  });
});
