import { describe, expect, it } from 'vitest';
import { luhnValid, scrubPii } from './pii';

describe('scrubPii', () => {
  it('replaces each kind with its placeholder', () => {
    const cases: Array<[string, string, string]> = [
      ['mail jane.doe+news@example.co.uk today', 'mail <EMAIL> today', 'email'],
      ['call +1 415-555-2671 now', 'call <PHONE> now', 'phone'],
      ['call (415) 555-2671 now', 'call <PHONE> now', 'phone'],
      ['server at 192.168.1.20 is down', 'server at <IP_ADDRESS> is down', 'ip_address'],
      ['v6 2001:db8:85a3::8a2e:370:7334 up', 'v6 <IP_ADDRESS> up', 'ip_address'],
      ['card 4111 1111 1111 1111 ok', 'card <CREDIT_CARD> ok', 'credit_card'],
      ['card 5500-0000-0000-0004 ok', 'card <CREDIT_CARD> ok', 'credit_card'],
      ['key sk-proj-abcdefghijklmnopqrstuvwxyz012345 here', 'key <SECRET> here', 'secret'],
      ['aws AKIAIOSFODNN7EXAMPLE id', 'aws <SECRET> id', 'secret'],
      ['token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789ab', 'token <SECRET>', 'secret'],
      ['api_key = "q8Xv2LmN4pR7sT1uW9yZ"', 'api_key = "<SECRET>"', 'secret'],
    ];
    for (const [input, output, type] of cases) {
      const r = scrubPii(input);
      expect(r.text, input).toBe(output);
      expect(r.found.map((f) => f.type)).toEqual([type]);
    }
  });

  it('leaves look-alikes alone', () => {
    const keep = [
      'order 4111 1111 1111 1112 (fails Luhn)',
      'installed version 1.2.3.4 yesterday',
      'release v10.2.0.1 is out',
      'Windows 10.0.19041.1288 build',
      'the value 999.1.1.1 is not an address',
      'in 1564, 23 ships sailed',
      'see section 3.4.1 of the spec',
      'user@localhost is not an address we scrub',
      'a password is needed', // no value
      'ISBN 978-3-16-148410-0',
    ];
    for (const s of keep) expect(scrubPii(s).text, s).toBe(s);
  });

  it('only scrubs the kinds asked for', () => {
    expect(scrubPii('a@b.io 10.0.0.1', ['ip_address']).text).toBe('a@b.io <IP_ADDRESS>');
  });

  it('checks card numbers with Luhn', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('79927398713')).toBe(false); // valid Luhn but too short for a card
  });
});

describe('scrubPii on long lines (linear-time searches)', () => {
  it('finds the same phone numbers window by window as the library does on the whole text, at window edges too', async () => {
    const { findPhoneNumbersInText } = await import('libphonenumber-js/max');
    const numbers = ['+1 415-555-2671', '(415) 555-2672', '415.555.2673', '+44 20 7946 0958'];
    // filler lengths that put numbers across the 256-character windows' edges
    let text = '';
    for (let i = 0; i < 60; i++) text += `${'word '.repeat(i % 53)}x${i} call ${numbers[i % numbers.length]} then. `;
    const whole = findPhoneNumbersInText(text, { defaultCountry: 'US' })
      .filter((p) => p.number.isValid())
      .map((p) => text.slice(p.startsAt, p.endsAt));
    const r = scrubPii(text, ['phone']);
    expect(whole.length).toBe(60);
    expect(r.found.map((f) => f.value)).toEqual(whole);
    expect(r.text.match(/<PHONE>/g)?.length).toBe(60);
  });

  it('scrubs PEM private keys by scanning, many BEGIN lines without an END included', () => {
    const key = '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----';
    expect(scrubPii(`a ${key} b ${key} c`, ['secret']).text).toBe('a <SECRET> b <SECRET> c');
    const headers = '-----BEGIN RSA PRIVATE KEY-----\n'.repeat(20_000);
    const r = scrubPii(`${headers}${key}`, ['secret']);
    expect(r.found).toHaveLength(1); // the first BEGIN runs to the only END: one block
    expect(r.text).toBe('<SECRET>');
    expect(scrubPii(headers, ['secret']).text).toBe(headers);
  });
});
