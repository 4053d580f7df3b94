// The file resource (datasets), shaped like OpenAI's.
import { type Static, Type } from '@sinclair/typebox';

export const FILE_FORMATS = ['text', 'jsonl_text', 'jsonl_prompt_completion', 'jsonl_chat'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

export const FileObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('file'),
    bytes: Type.Integer(),
    created_at: Type.Integer({ description: 'Unix seconds.' }),
    filename: Type.String(),
    purpose: Type.String(),
    status: Type.Literal('processed'),
    status_details: Type.Union([Type.String(), Type.Null()]),
    expires_at: Type.Union([Type.Integer(), Type.Null()]),
    format: Type.Union(
      FILE_FORMATS.map((f) => Type.Literal(f)),
      {
        description: 'What Crucible found in the file: plain text, or JSONL of {text}, {prompt, completion} or {messages}.',
      },
    ),
    lines: Type.Integer(),
    sha256: Type.String(),
  },
  { $id: 'File' },
);
export type FileObject = Static<typeof FileObject>;

export const FILE_PURPOSES = ['fine-tune', 'pretrain'] as const;
