// Request validation: bodies are checked as sent (no type coercion: `0` stays 0 and `null` stays
// null, so a value is never swapped for a default); query strings and path parameters, which are
// text on the wire, are coerced to the schema's types.
import AjvCompiler from '@fastify/ajv-compiler';
import type { FastifyServerOptions } from 'fastify';

const ajvOptions = { removeAdditional: false, useDefaults: false, allErrors: false } as const;

export function validatorFactory(): NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator'] {
  const pool = AjvCompiler();
  return (externalSchemas, options) => {
    const base = options ?? { customOptions: {} };
    const strict = pool(externalSchemas as never, { ...base, customOptions: { ...base.customOptions, ...ajvOptions, coerceTypes: false } } as never);
    const coercing = pool(externalSchemas as never, { ...base, customOptions: { ...base.customOptions, ...ajvOptions, coerceTypes: 'array' } } as never);
    return (route) => (route.httpPart === 'body' ? strict(route) : coercing(route));
  };
}
