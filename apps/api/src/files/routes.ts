// /v1/files: upload (multipart, streamed), list, retrieve, content, delete, and the dataset
// pipeline: validation report, preparation, statistics and tokenization preview.
import {
  CrucibleError,
  contentDisposition,
  Deleted,
  FILE_PURPOSES,
  FileObject,
  FilePreview,
  FilePreviewQuery,
  FileReport,
  FileStats,
  FileStatsQuery,
  IdParams,
  ListOf,
  ListQuery,
  PrepareFileRequest,
} from '@crucible/domain';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { filePreview, fileStats } from './insights';
import { createFile, deleteFile, fileContent, fileObject, fileReport, getFile, listFiles, requestPreparation, type UploadPart } from './service';

const UploadBody = Type.Object({
  file: Type.String({ format: 'binary', description: 'The dataset: .jsonl (one JSON object per line) or plain text.' }),
  purpose: Type.String({ enum: [...FILE_PURPOSES] }),
});

export const fileRoutes =
  (deps: Deps, cfg: ApiConfig): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/files',
      {
        schema: {
          operationId: 'createFile',
          tags: ['files'],
          consumes: ['multipart/form-data'],
          body: UploadBody,
          response: { 200: FileObject },
          description:
            'Streams the file to storage; validation runs in the background. The answer waits up to UPLOAD_WAIT_MS for it (status processed or error), else status is pending.',
        },
        // multipart bodies are parsed and checked in the handler (the schema documents them)
        validatorCompiler: () => () => true,
      },
      async (req) => {
        if (!req.isMultipart()) throw new CrucibleError('invalid_request', 'send the file as multipart/form-data', 'file');
        async function* parts(): AsyncGenerator<UploadPart> {
          for await (const part of req.parts({ limits: { fileSize: cfg.maxUploadBytes, files: 1 } })) {
            if (part.type === 'file') yield { kind: 'file', name: part.fieldname, filename: part.filename, stream: part.file };
            else yield { kind: 'field', name: part.fieldname, value: String(part.value) };
          }
        }
        const length = Number(req.headers['content-length']);
        return createFile(deps, cfg, req.actor, parts(), Number.isSafeInteger(length) && length > 0 ? length : undefined);
      },
    );

    app.get(
      '/files',
      {
        schema: {
          operationId: 'listFiles',
          tags: ['files'],
          querystring: Type.Intersect([ListQuery, Type.Object({ purpose: Type.Optional(Type.String()) })]),
          response: { 200: ListOf(FileObject) },
        },
      },
      async (req) => listFiles(deps, req.actor, req.query),
    );

    app.get('/files/:id', { schema: { operationId: 'retrieveFile', tags: ['files'], params: IdParams, response: { 200: FileObject } } }, async (req) =>
      fileObject(await getFile(deps, req.actor, req.params.id)),
    );

    app.get('/files/:id/content', { schema: { operationId: 'downloadFile', tags: ['files'], params: IdParams } }, async (req, reply) => {
      const { file, body } = await fileContent(deps, req.actor, req.params.id);
      reply.header('content-type', 'application/octet-stream').header('content-length', file.bytes);
      reply.header('content-disposition', contentDisposition(file.filename));
      return reply.send(body);
    });

    app.delete('/files/:id', { schema: { operationId: 'deleteFile', tags: ['files'], params: IdParams, response: { 200: Deleted('file') } } }, async (req) =>
      deleteFile(deps, req.actor, req.params.id),
    );

    app.get(
      '/files/:id/report',
      {
        schema: {
          operationId: 'retrieveFileReport',
          tags: ['files'],
          params: IdParams,
          response: { 200: FileReport },
          description:
            'The validation report (first 100 problems, total count, format, limits, length histogram) and, for a prepared file, the preparation report.',
        },
      },
      async (req) => fileReport(deps, req.actor, req.params.id),
    );

    app.post(
      '/files/:id/prepare',
      {
        schema: {
          operationId: 'prepareFile',
          tags: ['files'],
          params: IdParams,
          body: PrepareFileRequest,
          response: { 200: FileObject },
          description:
            'Runs the data preparation pipeline on a processed file and returns the new file (pending until prepared and validated); its report lists counts per rule and examples.',
        },
      },
      async (req) => requestPreparation(deps, req.actor, req.params.id, req.body ?? {}),
    );

    app.get(
      '/files/:id/stats',
      {
        schema: {
          operationId: 'retrieveFileStats',
          tags: ['files'],
          params: IdParams,
          querystring: FileStatsQuery,
          response: { 200: FileStats },
          description: 'Records, characters and a length histogram; with ?model=, tokens under that model’s tokenizer.',
        },
      },
      async (req) => fileStats(deps, req.actor, req.params.id, req.query.model),
    );

    app.get(
      '/files/:id/preview',
      {
        schema: {
          operationId: 'previewFile',
          tags: ['files'],
          params: IdParams,
          querystring: FilePreviewQuery,
          response: { 200: FilePreview },
          description: 'The first records as the trainer tokenizes them, each token marked with whether it carries loss.',
        },
      },
      async (req) => {
        const q = req.query;
        return filePreview(deps, req.actor, req.params.id, q.model, q.records ?? 3);
      },
    );
  };
