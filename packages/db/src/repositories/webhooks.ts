// Webhook endpoints and their delivery log. Deliveries are written by a database trigger when a
// job or an evaluation ends (see ../webhook-outbox.ts) and sent by the API's dispatcher.
import { type RecordPage, type WebhookEvent, type WebhookEventType, webhookEvent } from '@crucible/domain';
import type { WebhookDelivery as DeliveryRow, WebhookEndpoint as EndpointRow, Prisma } from '../../generated/client';
import { pageOf, Repository } from './base';

export interface WebhookEndpointRecord {
  id: string;
  projectId: string;
  name: string;
  url: string;
  secret: string;
  eventTypes: string[];
  createdAt: Date;
  updatedAt: Date;
}

export interface WebhookDeliveryRecord {
  id: string;
  projectId: string;
  endpointId: string;
  eventId: string;
  eventType: WebhookEventType;
  /** The job or evaluation it is about. */
  resourceId: string;
  /** What is sent: the same body on every attempt. */
  event: WebhookEvent;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

/** A delivery due now, with what is needed to send it. */
export interface DueDelivery extends WebhookDeliveryRecord {
  url: string;
  secret: string;
}

const endpointRecord = (e: EndpointRow): WebhookEndpointRecord => ({ ...e });
function deliveryRecord(d: DeliveryRow): WebhookDeliveryRecord {
  const eventType = d.eventType as WebhookEventType; // written by the outbox from the declared types only
  return { ...d, eventType, event: webhookEvent(d.eventId, eventType, d.resourceId, d.createdAt), status: d.status as WebhookDeliveryRecord['status'] };
}

export class WebhookRepository extends Repository {
  async create(e: Omit<WebhookEndpointRecord, 'createdAt' | 'updatedAt'>): Promise<WebhookEndpointRecord> {
    return endpointRecord(await this.run((db) => db.webhookEndpoint.create({ data: e })));
  }

  async get(projectId: string, id: string): Promise<WebhookEndpointRecord | null> {
    const e = await this.run((db) => db.webhookEndpoint.findFirst({ where: { id, projectId } }));
    return e ? endpointRecord(e) : null;
  }

  async list(projectId: string, q: { after?: string; limit: number }): Promise<RecordPage<WebhookEndpointRecord>> {
    const rows = await this.run(async (db) => {
      const cursor = q.after ? await db.webhookEndpoint.findFirst({ where: { id: q.after, projectId } }) : null;
      return db.webhookEndpoint.findMany({
        where: { projectId, ...(cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {}) },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: q.limit + 1,
      });
    });
    return pageOf(rows.map(endpointRecord), q.limit);
  }

  async update(projectId: string, id: string, set: Partial<Pick<WebhookEndpointRecord, 'name' | 'url' | 'eventTypes' | 'secret'>>) {
    const r = await this.run((db) => db.webhookEndpoint.updateMany({ where: { id, projectId }, data: { ...set, updatedAt: new Date() } }));
    return r.count ? this.get(projectId, id) : null;
  }

  async delete(projectId: string, id: string): Promise<boolean> {
    return (await this.run((db) => db.webhookEndpoint.deleteMany({ where: { id, projectId } }))).count === 1;
  }

  async deliveries(projectId: string, endpointId: string, q: { after?: string; limit: number }): Promise<RecordPage<WebhookDeliveryRecord>> {
    const rows = await this.run(async (db) => {
      const cursor = q.after ? await db.webhookDelivery.findFirst({ where: { id: q.after, projectId, endpointId } }) : null;
      return db.webhookDelivery.findMany({
        where: {
          projectId,
          endpointId,
          ...(cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {}),
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: q.limit + 1,
      });
    });
    return pageOf(rows.map(deliveryRecord), q.limit);
  }

  /**
   * Takes up to `limit` pending deliveries that are due, across projects, and holds them for
   * `leaseMs` (their next attempt moves on, so another dispatcher skips them meanwhile).
   */
  async claimDue(limit: number, leaseMs: number): Promise<DueDelivery[]> {
    return this.run(async (db) => {
      const rows = await db.$queryRaw<Array<{ id: string }>>`
        UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000})
         WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
                       ORDER BY next_attempt_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING id`;
      if (rows.length === 0) return [];
      const due = await db.webhookDelivery.findMany({ where: { id: { in: rows.map((r) => r.id) } }, include: { endpoint: true } });
      return due.map(({ endpoint, ...d }) => ({ ...deliveryRecord(d), url: endpoint.url, secret: endpoint.secret }));
    });
  }

  /** The outcome of one attempt: delivered, retried at `retryAt`, or failed for good (retryAt null). */
  async recordAttempt(id: string, outcome: { delivered: boolean; statusCode: number | null; error: string | null; retryAt: Date | null }): Promise<void> {
    const data: Prisma.WebhookDeliveryUpdateInput = {
      attempts: { increment: 1 },
      lastStatusCode: outcome.statusCode,
      lastError: outcome.error,
      ...(outcome.delivered ? { status: 'delivered', deliveredAt: new Date() } : outcome.retryAt ? { nextAttemptAt: outcome.retryAt } : { status: 'failed' }),
    };
    await this.run((db) => db.webhookDelivery.update({ where: { id }, data }));
  }

  async pendingCount(): Promise<number> {
    return this.run((db) => db.webhookDelivery.count({ where: { status: 'pending' } }));
  }
}
