// One LISTEN connection on some channels, reconnecting when it drops. `onNotify` gets each
// notification; `onUp` when notifications flow (again) and `onDown` when the connection is lost:
// between the two a notification may have been missed, so a listener that caches or waits must
// not trust its silence then.
import pg from 'pg';

export interface ListenerHandlers {
  onNotify(channel: string, payload: string): void;
  onUp?(): void;
  onDown?(): void;
}

export class Listener {
  private client: InstanceType<typeof pg.Client> | undefined;
  private stopped = true;
  private retry: NodeJS.Timeout | undefined;
  /** Whether notifications are flowing now. */
  up = false;

  constructor(
    private readonly url: string,
    private readonly channels: readonly string[],
    private readonly handlers: ListenerHandlers,
    private readonly retryMs = 1000,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.setDown();
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }

  private setDown(): void {
    if (!this.up) return;
    this.up = false;
    this.handlers.onDown?.();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 });
    const lost = () => {
      if (this.client !== client) return;
      this.client = undefined;
      this.setDown();
      void client.end().catch(() => {});
      if (!this.stopped) this.retry = setTimeout(() => void this.connect(), this.retryMs);
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      if (n.payload) this.handlers.onNotify(n.channel, n.payload);
    });
    this.client = client;
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
      if (this.client !== client) return;
      this.up = true;
      this.handlers.onUp?.();
    } catch {
      lost();
    }
  }
}
