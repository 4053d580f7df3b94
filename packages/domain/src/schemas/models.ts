// The model resource: base presets (owned by "crucible") and the project's trained models.
import { type Static, Type } from '@sinclair/typebox';

export const ModelObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('model'),
    created: Type.Integer(),
    owned_by: Type.String(),
    arch: Type.Union([Type.Literal('gpt'), Type.Literal('bert'), Type.Literal('llama')], {
      description:
        'gpt: GPT-2-shaped decoder; bert: masked-LM encoder; llama: the Llama, Qwen2, Qwen3 and SmolLM decoders (RMSNorm, RoPE, SwiGLU, grouped-query attention).',
    }),
    base_model: Type.Union([Type.String(), Type.Null()]),
    fine_tuning_job: Type.Union([Type.String(), Type.Null()]),
    source: Type.Union([Type.Literal('preset'), Type.Literal('trained'), Type.Literal('imported'), Type.Literal('checkpoint')], {
      description:
        'preset: an untrained shape; trained: made by a fine-tuning job; imported: uploaded through POST /v1/models; checkpoint: a job’s fine_tuned_model_checkpoint (retrieved, sampled, evaluated, downloaded and fine-tuned from by that name; not listed).',
    }),
    peft: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
      description:
        'The LoRA or adapter config the model was trained with (null: every weight was trained). A LoRA model is stored merged; its adapter is downloadable on its own.',
    }),
  },
  { $id: 'Model' },
);
export type ModelObject = Static<typeof ModelObject>;
