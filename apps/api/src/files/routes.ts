// /v1/files: upload (multipart), list, retrieve, content, delete.
import { CrucibleError, Deleted, FileObject, IdParams, ListOf, ListQuery } from '@crucible/domain';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { createFile, deleteFile, fileContent, fileObject, getFile, listFiles } from './service';

const UploadBody = Type.Object({
  file: Type.String({ format: 'binary', description: 'The dataset: .jsonl (one JSON object per line) or plain text.' }),
  purpose: Type.String({ enum: ['fine-tune', 'pretrain'] }),
});

export const fileRoutes =
  (deps: Deps, cfg: ApiConfig): FastifyPluginAsync =>
  async (app) => {
    app.post(
      '/files',
      {
        schema: { operationId: 'createFile', tags: ['files'], consumes: ['multipart/form-data'], body: UploadBody, response: { 200: FileObject } },
        // multipart bodies are parsed and checked in the handler (the schema documents them)
        validatorCompiler: () => () => true,
      },
      async (req) => {
        if (!req.isMultipart()) throw new CrucibleError('invalid_request', 'send the file as multipart/form-data', 'file');
        let purpose: string | undefined;
        let upload: { filename: string; bytes: Buffer } | undefined;
        for await (const part of req.parts({ limits: { fileSize: cfg.maxUploadBytes, files: 1 } })) {
          if (part.type === 'file') {
            if (part.fieldname !== 'file') throw new CrucibleError('invalid_request', `unexpected file field ${part.fieldname}`, part.fieldname);
            const bytes = await part.toBuffer();
            if (part.file.truncated) throw new CrucibleError('file_too_large', `the file exceeds ${cfg.maxUploadBytes} bytes`, 'file');
            upload = { filename: part.filename || 'upload', bytes };
          } else if (part.fieldname === 'purpose') purpose = String(part.value);
        }
        if (!upload) throw new CrucibleError('invalid_request', 'the file field is missing', 'file');
        return createFile(deps, req.actor, { filename: upload.filename, purpose, bytes: upload.bytes });
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
      async (req) => listFiles(deps, req.actor, req.query as { after?: string; limit?: number; purpose?: string }),
    );

    app.get('/files/:id', { schema: { operationId: 'retrieveFile', tags: ['files'], params: IdParams, response: { 200: FileObject } } }, async (req) =>
      fileObject(await getFile(deps, req.actor, (req.params as { id: string }).id)),
    );

    app.get('/files/:id/content', { schema: { operationId: 'downloadFile', tags: ['files'], params: IdParams } }, async (req, reply) => {
      const { file, body } = await fileContent(deps, req.actor, (req.params as { id: string }).id);
      reply.header('content-type', 'application/octet-stream').header('content-length', file.bytes);
      reply.header('content-disposition', `attachment; filename="${file.filename.replace(/"/g, '')}"`);
      return reply.send(body);
    });

    app.delete('/files/:id', { schema: { operationId: 'deleteFile', tags: ['files'], params: IdParams, response: { 200: Deleted('file') } } }, async (req) =>
      deleteFile(deps, req.actor, (req.params as { id: string }).id),
    );
  };
