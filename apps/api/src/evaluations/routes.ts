// /v1/evaluations: create, list, retrieve, cancel, events, and the comparison table.
import {
  ComparisonQuery,
  CreateEvaluationRequest,
  EvaluationComparison,
  EvaluationEventObject,
  EvaluationObject,
  IdParams,
  ListOf,
  ListQuery,
} from '@crucible/domain';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Deps } from '../deps';
import { cancelEvaluation, compareEvaluations, createEvaluation, evaluationObject, getEvaluation, listEvaluationEvents, listEvaluations } from './service';

export const evaluationRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/evaluations',
      {
        schema: {
          operationId: 'createEvaluation',
          tags: ['evaluations'],
          body: CreateEvaluationRequest,
          response: { 200: EvaluationObject },
          description:
            'Scores a model or checkpoint on a processed file: loss, perplexity and token accuracy (masked-token accuracy for bert); for prompt/completion and chat data also the answer-only loss and exact match of greedy answers; a few sample generations.',
        },
      },
      async (req) => createEvaluation(deps, req.actor, req.body),
    );

    app.get(
      '/evaluations',
      {
        schema: {
          operationId: 'listEvaluations',
          tags: ['evaluations'],
          querystring: Type.Intersect([ListQuery, Type.Object({ file: Type.Optional(Type.String()), model: Type.Optional(Type.String()) })]),
          response: { 200: ListOf(EvaluationObject) },
        },
      },
      async (req) => listEvaluations(deps, req.actor, req.query),
    );

    app.get(
      '/evaluations/comparison',
      {
        schema: {
          operationId: 'compareEvaluations',
          tags: ['evaluations'],
          querystring: ComparisonQuery,
          response: { 200: EvaluationComparison },
          description: 'The latest succeeded evaluation of each model (or of the models named) on one file, as one table.',
        },
      },
      async (req) => {
        const q = req.query;
        const models = q.models
          ?.split(',')
          .map((m) => m.trim())
          .filter(Boolean);
        return compareEvaluations(deps, req.actor, q.file, models);
      },
    );

    app.get(
      '/evaluations/:id',
      { schema: { operationId: 'retrieveEvaluation', tags: ['evaluations'], params: IdParams, response: { 200: EvaluationObject } } },
      async (req) => evaluationObject(await getEvaluation(deps, req.actor, req.params.id)),
    );

    app.post(
      '/evaluations/:id/cancel',
      { schema: { operationId: 'cancelEvaluation', tags: ['evaluations'], params: IdParams, response: { 200: EvaluationObject } } },
      async (req) => cancelEvaluation(deps, req.actor, req.params.id),
    );

    app.get(
      '/evaluations/:id/events',
      {
        schema: {
          operationId: 'listEvaluationEvents',
          tags: ['evaluations'],
          params: IdParams,
          querystring: ListQuery,
          response: { 200: ListOf(EvaluationEventObject) },
        },
      },
      async (req) => listEvaluationEvents(deps, req.actor, req.params.id, req.query),
    );
  };
