// A local S3-compatible server (s3rver) on a folder, for the quickstart and the tests.
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export interface LocalS3 {
  endpoint: string;
  close(): Promise<void>;
}

export async function startLocalS3(directory: string, port = 0): Promise<LocalS3> {
  mkdirSync(directory, { recursive: true });
  const { default: S3rver } = await import('s3rver');
  const server = new S3rver({ port, address: '127.0.0.1', directory, silent: true });
  const addr = (await server.run()) as AddressInfo;
  return { endpoint: `http://127.0.0.1:${addr.port}`, close: () => server.close() };
}
