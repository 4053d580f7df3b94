// s3rver ships no type declarations; this is the part Crucible uses.
declare module 's3rver' {
  export default class S3rver {
    constructor(opts: { port?: number; address?: string; directory: string; silent?: boolean; configureBuckets?: Array<{ name: string }> });
    run(): Promise<import('node:net').AddressInfo>;
    close(): Promise<void>;
  }
}
