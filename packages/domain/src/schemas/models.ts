// The model resource: base presets (owned by "crucible") and the project's trained models.
import { type Static, Type } from '@sinclair/typebox';

export const ModelObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('model'),
    created: Type.Integer(),
    owned_by: Type.String(),
    arch: Type.Union([Type.Literal('gpt'), Type.Literal('bert')]),
    base_model: Type.Union([Type.String(), Type.Null()]),
    fine_tuning_job: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'Model' },
);
export type ModelObject = Static<typeof ModelObject>;
