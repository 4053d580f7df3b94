// Shapes shared by every resource: errors, lists, deletion receipts.
import { type TSchema, Type } from '@sinclair/typebox';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code (see the README error table).' }),
      message: Type.String(),
      param: Type.Union([Type.String(), Type.Null()], { description: 'The request field or input line at fault.' }),
      type: Type.String(),
    }),
  },
  { $id: 'Error' },
);

export const ListQuery = Type.Object({
  after: Type.Optional(Type.String({ description: 'Cursor: the id of the last object of the previous page.' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
});

export function ListOf<T extends TSchema>(item: T) {
  return Type.Object({
    object: Type.Literal('list'),
    data: Type.Array(item),
    has_more: Type.Boolean(),
    first_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    last_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  });
}

export function Deleted(object: string) {
  return Type.Object({ id: Type.String(), object: Type.Literal(object), deleted: Type.Boolean() });
}

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** Why a job or an evaluation failed (its `error` field). */
export const FailureError = Type.Object({ code: Type.String(), message: Type.String(), param: Nullable(Type.String()) });

/** The level of a job's or an evaluation's event. */
export const EventLevelSchema = Type.Union([Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')]);

/** metadata on jobs and evaluations: at most 16 pairs, keys up to 64 characters, values up to 512 (as OpenAI's). */
export const METADATA_LIMITS = { pairs: 16, keyChars: 64, valueChars: 512 } as const;
export const Metadata = Type.Record(Type.String(), Type.String({ maxLength: METADATA_LIMITS.valueChars }), {
  maxProperties: METADATA_LIMITS.pairs,
  propertyNames: { maxLength: METADATA_LIMITS.keyChars },
  description: `Up to ${METADATA_LIMITS.pairs} key-value pairs; keys up to ${METADATA_LIMITS.keyChars} characters, values up to ${METADATA_LIMITS.valueChars}.`,
});
