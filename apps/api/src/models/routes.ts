// /v1/models: list, retrieve, delete, import (POST, multipart), download (a streamed .tar.gz of
// the model's Hugging Face folder, full or adapter-only) and single files.
import { CrucibleError, contentDisposition, Deleted, ModelObject } from '@crucible/domain';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { type DownloadVariant, deleteModel, IMPORT_FILES, listModels, ModelImport, modelArchive, modelFile, retrieveModel } from './service';

const tags = ['models'];
const Params = Type.Object({ model: Type.String() });
type Req = { params: { model: string } };

const ImportBody = Type.Object({
  name: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Short name; the model id is imported:<name>:<random>. Default gpt2.' })),
  file: Type.Array(Type.String({ format: 'binary' }), {
    description: `The model's files (${IMPORT_FILES.join(', ')}), each as a part named by its file name, or one .tar.gz / .tar of them.`,
  }),
});

/** RFC 6266 attachment header with an ASCII fallback and the UTF-8 name. */
export const modelRoutes =
  (deps: Deps, cfg: ApiConfig): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/models',
      { schema: { operationId: 'listModels', tags, response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(ModelObject) }) } } },
      async (req) => listModels(deps, req.actor),
    );

    app.post(
      '/models',
      {
        schema: { operationId: 'importModel', tags, consumes: ['multipart/form-data'], body: ImportBody, response: { 200: ModelObject } },
        validatorCompiler: () => () => true, // multipart bodies are checked in the handler
      },
      async (req) => {
        if (!req.isMultipart()) throw new CrucibleError('invalid_request', 'send the model files as multipart/form-data', 'file');
        let name = 'gpt2';
        let imp: ModelImport | undefined;
        try {
          for await (const part of req.parts({ limits: { fileSize: cfg.maxModelUploadBytes, files: 16 } })) {
            if (part.type === 'field') {
              if (part.fieldname !== 'name') throw new CrucibleError('invalid_request', `unexpected field ${part.fieldname}`, part.fieldname);
              if (imp) throw new CrucibleError('invalid_request', 'send the name field before the files', 'name');
              name = String(part.value);
              if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new CrucibleError('invalid_request', 'name must be 1-64 letters, digits, _ . or -', 'name');
              continue;
            }
            if (!imp) {
              imp = new ModelImport(deps, req.actor, name, cfg.maxModelUploadBytes);
              const length = Number(req.headers['content-length']);
              await imp.begin(Number.isSafeInteger(length) && length > 0 ? length : undefined);
            }
            await imp.add({ filename: part.filename || part.fieldname, stream: part.file });
            if (part.file.truncated) throw new CrucibleError('file_too_large', `${part.filename} exceeds ${cfg.maxModelUploadBytes} bytes`, 'file');
          }
          if (!imp) throw new CrucibleError('invalid_model', 'no model files were sent', 'file');
          return await imp.finish();
        } catch (err) {
          await imp?.discard();
          throw err;
        }
      },
    );

    app.get('/models/:model', { schema: { operationId: 'retrieveModel', tags, params: Params, response: { 200: ModelObject } } }, async (req) =>
      retrieveModel(deps, req.actor, (req as Req).params.model),
    );

    app.delete('/models/:model', { schema: { operationId: 'deleteModel', tags, params: Params, response: { 200: Deleted('model') } } }, async (req) =>
      deleteModel(deps, req.actor, (req as Req).params.model),
    );

    app.get(
      '/models/:model/download',
      {
        schema: {
          operationId: 'downloadModel',
          tags,
          params: Params,
          querystring: Type.Object({
            variant: Type.Optional(
              Type.Union([Type.Literal('full'), Type.Literal('adapter')], {
                default: 'full',
                description: 'full: weights (LoRA merged), config and tokenizer files; adapter: the adapter files (PEFT for LoRA) and tokenizer files.',
              }),
            ),
          }),
        },
      },
      async (req, reply) => {
        const variant = (req.query.variant ?? 'full') as DownloadVariant;
        const { name, body } = await modelArchive(deps, req.actor, (req as Req).params.model, variant);
        return reply.header('content-type', 'application/gzip').header('content-disposition', contentDisposition(name)).send(body);
      },
    );

    app.get(
      '/models/:model/files/:name',
      { schema: { operationId: 'downloadModelFile', tags, params: Type.Object({ model: Type.String(), name: Type.String() }) } },
      async (req, reply) => {
        const { model, name } = req.params;
        const f = await modelFile(deps, req.actor, model, name);
        return reply
          .header('content-type', 'application/octet-stream')
          .header('content-length', f.size)
          .header('content-disposition', contentDisposition(name))
          .send(f.body);
      },
    );
  };
