// Sends due webhook deliveries: signed POSTs of the event JSON; a 2xx within WEBHOOK_TIMEOUT_MS
// is delivered, anything else is retried with exponential backoff and jitter until
// WEBHOOK_MAX_ATTEMPTS, then marked failed. Each attempt is recorded in the delivery log. Several
// API processes can run it: claiming a delivery leases it (FOR UPDATE SKIP LOCKED).
import type { DueDelivery, Store } from '@crucible/db';
import type { ApiConfig } from '../config';
import type { ApiMetrics } from '../front-door/metrics';
import { type AddressPolicy, addressPolicy } from './address-policy';
import { postSigned } from './signing';

const BATCH = 20;
const MAX_DELAY_MS = 3_600_000;

export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly policy: AddressPolicy;

  constructor(
    private readonly store: Store,
    private readonly cfg: ApiConfig['webhooks'],
    private readonly metrics?: ApiMetrics,
    private readonly log: (msg: string) => void = () => {},
  ) {
    this.policy = addressPolicy(cfg);
  }

  start(): void {
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      this.running = this.sendDue()
        .then(() => {})
        .catch((err: Error) => this.log(`webhook dispatch: ${err.message}`))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.cfg.pollMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass: every due delivery (in batches), sent concurrently within a batch. */
  async sendDue(): Promise<number> {
    let sent = 0;
    for (;;) {
      const due = await this.store.webhooks.claimDue(BATCH, this.cfg.timeoutMs + 30_000);
      if (due.length === 0) return sent;
      await Promise.all(due.map((d) => this.attempt(d)));
      sent += due.length;
      if (due.length < BATCH || this.stopped) return sent;
    }
  }

  private async attempt(d: DueDelivery): Promise<void> {
    const { statusCode, error } = await postSigned(d.url, d.secret, d.eventId, JSON.stringify(d.event), this.cfg.timeoutMs, this.policy);
    const delivered = error === null;
    const attempts = d.attempts + 1;
    const retryAt = delivered || attempts >= this.cfg.maxAttempts ? null : new Date(Date.now() + backoff(this.cfg.retryBaseMs, attempts));
    this.metrics?.webhookAttempts.inc({ outcome: delivered ? 'delivered' : retryAt ? 'retry' : 'failed' });
    await this.store.webhooks.recordAttempt(d.id, { delivered, statusCode, error, retryAt });
  }
}

/** base x 2^(attempt-1), +-20 % jitter, at most an hour. */
export function backoff(baseMs: number, attempt: number): number {
  const exp = Math.min(MAX_DELAY_MS, baseMs * 2 ** (attempt - 1));
  return Math.round(exp * (0.8 + 0.4 * Math.random()));
}
