import { describe, expect, it } from 'vitest';
import { PartHeaderCheck } from './part-headers';

const B = 'XyZ-boundary';

function body(disposition: string, extraHeaders = 'Content-Type: text/plain\r\n', content = 'hello\r\n--XyZ- not the boundary\r\n'): Buffer {
  return Buffer.from(
    `--${B}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n` +
      `--${B}\r\nContent-Disposition: ${disposition}\r\n${extraHeaders}\r\n${content}\r\n--${B}--\r\nepilogue: no colon here\r\n`,
  );
}

/** Fed in pieces cut at every position (a header or delimiter split across chunks must not matter). */
function problemsAtEverySplit(buf: Buffer): Set<string | undefined> {
  const seen = new Set<string | undefined>();
  for (let cut = 0; cut <= buf.length; cut++) {
    const c = new PartHeaderCheck(B);
    c.push(buf.subarray(0, cut));
    c.push(buf.subarray(cut));
    seen.add(c.problem);
  }
  const bytewise = new PartHeaderCheck(B);
  for (let i = 0; i < buf.length; i++) bytewise.push(buf.subarray(i, i + 1));
  seen.add(bytewise.problem);
  return seen;
}

describe('PartHeaderCheck', () => {
  it('passes well-formed parts, folded header lines and content that looks like headers', () => {
    expect(problemsAtEverySplit(body('form-data; name="file"; filename="a.txt"'))).toEqual(new Set([undefined]));
    expect(problemsAtEverySplit(body('form-data; name="file";\r\n filename="folded.txt"'))).toEqual(new Set([undefined]));
    expect(problemsAtEverySplit(body('form-data; name="file"; filename="a.txt"', '', 'no colon\r\n\r\nline\r\n'))).toEqual(new Set([undefined]));
  });

  it('notes a filename holding CR LF (the parser would cut it short), wherever the chunks are cut', () => {
    const seen = problemsAtEverySplit(body('form-data; name="file"; filename="a\r\nb.txt"'));
    expect(seen.size).toBe(1);
    expect([...seen][0]).toMatch(/line break/);
    const c = new PartHeaderCheck(B);
    c.push(body('form-data; name="file"; filename="a\r\nb.txt"'));
    expect(c.param).toBe('filename');
  });

  it('notes a bare LF or CR inside a header line', () => {
    for (const fn of ['a\nb.txt', 'a\rb.txt']) {
      const seen = problemsAtEverySplit(body(`form-data; name="file"; filename="${fn}"`));
      expect(seen.size).toBe(1);
      expect([...seen][0]).toMatch(/bare CR or LF/);
    }
  });

  it('reads the boundary from the content type, quoted or not', () => {
    expect(PartHeaderCheck.boundaryOf(`multipart/form-data; boundary=${B}`)).toBe(B);
    expect(PartHeaderCheck.boundaryOf('multipart/form-data; boundary="a b;c"')).toBe('a b;c');
    expect(PartHeaderCheck.boundaryOf('application/json')).toBeUndefined();
  });
});
