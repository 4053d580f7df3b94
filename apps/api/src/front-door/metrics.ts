// Prometheus metrics at /metrics: request rates and latencies per route, rate-limit refusals,
// webhook deliveries, and (read at scrape time) queue depth, jobs per status, durations of
// succeeded jobs and the tokens/s of running jobs. One registry per app (tests run several).
import type { Store } from '@crucible/db';
import { JOB_STATUSES } from '@crucible/domain';
import type { Queue } from 'bullmq';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const DURATION_BUCKETS = [10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;

export class ApiMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'crucible_http_requests_total',
    help: 'HTTP requests answered',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'crucible_http_request_duration_seconds',
    help: 'Time from request to the end of the answer',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({ name: 'crucible_rate_limited_total', help: 'Requests refused by the per-key rate limit', registers: [this.registry] });
  readonly quotaRefusals = new Counter({
    name: 'crucible_quota_refusals_total',
    help: 'Requests refused by a project limit',
    labelNames: ['limit'],
    registers: [this.registry],
  });
  readonly webhookAttempts = new Counter({
    name: 'crucible_webhook_attempts_total',
    help: 'Webhook delivery attempts',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  constructor(store: Store, queues: Record<string, Queue>) {
    const registry = this.registry;
    new Gauge({
      name: 'crucible_queue_jobs',
      help: 'Queue entries per queue and state',
      labelNames: ['queue', 'state'],
      registers: [registry],
      async collect() {
        for (const [name, q] of Object.entries(queues)) {
          const counts = await q.getJobCounts(...QUEUE_STATES).catch(() => null);
          if (counts) for (const state of QUEUE_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
        }
      },
    });
    // the database is read once per scrape for the three job figures
    let ops: Promise<Awaited<ReturnType<Store['jobs']['operations']>> | null> | undefined;
    const operations = () => {
      ops ??= store.jobs.operations(DURATION_BUCKETS).catch(() => null);
      setImmediate(() => {
        ops = undefined;
      });
      return ops;
    };
    new Gauge({
      name: 'crucible_jobs',
      help: 'Fine-tuning jobs per status',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        const o = await operations();
        if (o) for (const s of JOB_STATUSES) this.set({ status: s }, o.byStatus[s] ?? 0);
      },
    });
    new Gauge({
      name: 'crucible_training_tokens_per_second',
      help: 'Summed throughput of running jobs (each job’s latest recorded tokens/s)',
      registers: [registry],
      async collect() {
        const o = await operations();
        if (o) this.set(o.runningTokensPerSec);
      },
    });
    // succeeded jobs' durations as a histogram computed from the records at scrape time
    registry.registerMetric({
      name: 'crucible_job_duration_seconds',
      help: 'Duration of succeeded jobs, from start to finish',
      type: 'histogram',
      aggregator: 'sum',
      async get() {
        const o = await operations();
        const d = o?.durations ?? { buckets: DURATION_BUCKETS.map(() => 0), count: 0, sum: 0 };
        const name = 'crucible_job_duration_seconds';
        return {
          name,
          help: 'Duration of succeeded jobs, from start to finish',
          type: 'histogram',
          aggregator: 'sum',
          values: [
            ...DURATION_BUCKETS.map((le, i) => ({ metricName: `${name}_bucket`, labels: { le }, value: d.buckets[i] ?? 0 })),
            { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: d.count },
            { metricName: `${name}_sum`, labels: {}, value: d.sum },
            { metricName: `${name}_count`, labels: {}, value: d.count },
          ],
        };
      },
    } as never);
  }

  /** Counts every answered request by its route pattern (never the raw URL: ids would explode the labels). */
  observe(req: FastifyRequest, reply: FastifyReply): void {
    const route = req.routeOptions.url ?? 'unmatched';
    this.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    this.latency.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  }
}
