// /v1/models: list, retrieve, delete, and download (a .tar.gz of weights, config and tokenizer).
import { Deleted, ModelObject } from '@crucible/domain';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { Deps } from '../deps';
import { deleteModel, listModels, modelArchive, retrieveModel } from './service';

const tags = ['models'];
const Params = Type.Object({ model: Type.String() });
type Req = { params: { model: string } };

export const modelRoutes =
  (deps: Deps): FastifyPluginAsync =>
  async (app) => {
    app.get(
      '/models',
      { schema: { operationId: 'listModels', tags, response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(ModelObject) }) } } },
      async (req) => listModels(deps, req.actor),
    );
    app.get('/models/:model', { schema: { operationId: 'retrieveModel', tags, params: Params, response: { 200: ModelObject } } }, async (req) =>
      retrieveModel(deps, req.actor, (req as Req).params.model),
    );
    app.delete('/models/:model', { schema: { operationId: 'deleteModel', tags, params: Params, response: { 200: Deleted('model') } } }, async (req) =>
      deleteModel(deps, req.actor, (req as Req).params.model),
    );
    app.get('/models/:model/download', { schema: { operationId: 'downloadModel', tags, params: Params } }, async (req, reply) => {
      const { name, body } = await modelArchive(deps, req.actor, (req as Req).params.model);
      return reply.header('content-type', 'application/gzip').header('content-disposition', `attachment; filename="${name}"`).send(body);
    });
  };
