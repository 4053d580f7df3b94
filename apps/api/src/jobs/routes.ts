// /v1/fine_tuning/jobs and its sub-resources; `events?stream=true` is a Server-Sent Events feed
// (jobs/event-stream.ts).
import {
  CheckpointObject,
  CreateJobRequest,
  EventObject,
  IdParams,
  JobEstimate,
  JobObject,
  ListOf,
  ListQuery,
  MetricsList,
  MetricsQuery,
} from '@crucible/domain';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Deps } from '../deps';
import { estimateJob } from './estimate';
import { JobEventStreams } from './event-stream';
import { cancelJob, createJob, getJob, jobMetrics, jobObject, listCheckpoints, listEvents, listJobs, pauseJob, resumeJob } from './service';

const tags = ['fine_tuning'];

export const jobRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    // event streams are hijacked replies, which closing the server would wait for: it ends them
    const streams = new JobEventStreams(deps);
    app.addHook('preClose', async () => streams.closeAll());
    app.post('/fine_tuning/jobs', { schema: { operationId: 'createFineTuningJob', tags, body: CreateJobRequest, response: { 200: JobObject } } }, async (req) =>
      createJob(deps, req.actor, req.body),
    );
    app.post(
      '/fine_tuning/jobs/estimate',
      {
        schema: {
          operationId: 'estimateFineTuningJob',
          tags,
          body: CreateJobRequest,
          response: { 200: JobEstimate },
          description:
            'What a job would do, without creating it: training tokens (with the tokenizer it would use), steps, and a duration from the throughput of earlier jobs of the same model.',
        },
      },
      async (req) => estimateJob(deps, req.actor, req.body),
    );
    app.get(
      '/fine_tuning/jobs',
      { schema: { operationId: 'listFineTuningJobs', tags, querystring: ListQuery, response: { 200: ListOf(JobObject) } } },
      async (req) => listJobs(deps, req.actor, req.query),
    );
    app.get('/fine_tuning/jobs/:id', { schema: { operationId: 'retrieveFineTuningJob', tags, params: IdParams, response: { 200: JobObject } } }, async (req) =>
      jobObject(await getJob(deps, req.actor, req.params.id)),
    );
    for (const [action, fn] of [
      ['cancel', cancelJob],
      ['pause', pauseJob],
      ['resume', resumeJob],
    ] as const) {
      app.post(
        `/fine_tuning/jobs/:id/${action}`,
        { schema: { operationId: `${action}FineTuningJob`, tags, params: IdParams, response: { 200: JobObject } } },
        async (req) => fn(deps, req.actor, req.params.id),
      );
    }
    app.get(
      '/fine_tuning/jobs/:id/events',
      {
        schema: {
          operationId: 'listFineTuningEvents',
          tags,
          params: IdParams,
          querystring: Type.Intersect([
            ListQuery,
            Type.Object({ stream: Type.Optional(Type.Boolean({ description: 'Server-Sent Events: every event from the start, live, until the job ends.' })) }),
          ]),
          response: { 200: ListOf(EventObject) },
        },
      },
      async (req, reply) => {
        const id = req.params.id;
        const q = req.query;
        if (!q.stream) return listEvents(deps, req.actor, id, q);
        await getJob(deps, req.actor, id);
        reply.hijack();
        await streams.stream(req.actor, id, reply.raw);
      },
    );
    app.get(
      '/fine_tuning/jobs/:id/checkpoints',
      { schema: { operationId: 'listFineTuningCheckpoints', tags, params: IdParams, querystring: ListQuery, response: { 200: ListOf(CheckpointObject) } } },
      async (req) => listCheckpoints(deps, req.actor, req.params.id, req.query),
    );
    app.get(
      '/fine_tuning/jobs/:id/metrics',
      { schema: { operationId: 'getFineTuningMetrics', tags, params: IdParams, querystring: MetricsQuery, response: { 200: MetricsList } } },
      async (req) => jobMetrics(deps, req.actor, req.params.id, req.query.max_points),
    );
  };
