// Models' own Jinja chat templates, rendered by @huggingface/jinja (transformers.js's renderer):
// the prompts are the formats the model cards document, and the answers that carry loss are found
// by rendering. The real tokenizer_config.json files are read from ../shared (skipped without it).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chatTemplateOf, hasChatTemplate, jinjaChatTemplate } from './chat-template';
import { CharTokenizer } from './tokenizer';
import { HfTokenizer } from './tokenizer/hf-tokenizer';

const SHARED = join(import.meta.dirname, '../../../../shared/data/hf-tokenizers');
const conversation = [
  { role: 'user', content: 'What is 7 plus 5?' },
  { role: 'assistant', content: '12' },
  { role: 'user', content: 'And 2 plus 2?' },
  { role: 'assistant', content: '4' },
];

describe('a Jinja chat template', () => {
  const chatml =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

  it('renders the prompt with the generation prompt', () => {
    expect(jinjaChatTemplate(chatml).prompt(conversation.slice(0, 1))).toBe('<|im_start|>user\nWhat is 7 plus 5?<|im_end|>\n<|im_start|>assistant\n');
  });

  it('marks each answer and its end marker, found by rendering; the segments join to the whole rendering', () => {
    const segs = jinjaChatTemplate(chatml).segments(conversation);
    expect(segs.filter((s) => s.assistant).map((s) => s.text)).toEqual(['12<|im_end|>\n', '4<|im_end|>\n']);
    expect(segs.map((s) => s.text).join('')).toBe(conversation.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join(''));
  });

  it('passes the special tokens of tokenizer_config.json (bos_token, eos_token) to the template', () => {
    const t = jinjaChatTemplate("{{ bos_token }}{% for m in messages %}{{ m['content'] + eos_token }}{% endfor %}", {
      bos_token: '<s>',
      eos_token: { content: '</s>' },
    });
    expect(t.prompt([{ role: 'user', content: 'hi' }])).toBe('<s>hi</s>');
  });
});

describe.skipIf(!existsSync(SHARED))("the real models' templates (from ../shared)", () => {
  const tokenizer = (folder: string) =>
    HfTokenizer.fromJSON(
      readFileSync(join(SHARED, folder, 'tokenizer.json'), 'utf8'),
      JSON.parse(readFileSync(join(SHARED, folder, 'tokenizer_config.json'), 'utf8')),
    );
  it.each([
    [
      'qwen2.5-0.5b-instruct',
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 7 plus 5?<|im_end|>\n<|im_start|>assistant\n',
      ['12<|im_end|>\n', '4<|im_end|>\n'],
    ],
    [
      'smollm2-135m-instruct',
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 7 plus 5?<|im_end|>\n<|im_start|>assistant\n',
      ['12<|im_end|>\n', '4<|im_end|>\n'],
    ],
    ['tinyllama-1.1b-chat', '<|user|>\nWhat is 7 plus 5?</s>\n<|assistant|>\n', ['12</s>\n', '4</s>\n']],
  ])('%s: the documented prompt format, and the answers with their end markers', (folder, prompt, answers) => {
    const t = chatTemplateOf(tokenizer(folder));
    expect(t.crucible).toBe(false);
    expect(t.prompt(conversation.slice(0, 1))).toBe(prompt);
    expect(
      t
        .segments(conversation)
        .filter((s) => s.assistant)
        .map((s) => s.text),
    ).toEqual(answers);
  });
});

describe.skipIf(!existsSync(SHARED))('whether a model has a chat template (reinforcement needs one)', () => {
  const read = (folder: string) =>
    HfTokenizer.fromJSON(
      readFileSync(join(SHARED, folder, 'tokenizer.json'), 'utf8'),
      JSON.parse(readFileSync(join(SHARED, folder, 'tokenizer_config.json'), 'utf8')),
    );
  it('an imported instruct model has its own; an imported base model (GPT-2) has none; a model Crucible trained has Crucible’s', () => {
    expect(hasChatTemplate(read('smollm2-135m-instruct'), true)).toBe(true);
    expect(hasChatTemplate(read('qwen2.5-0.5b-instruct'), true)).toBe(true);
    expect(hasChatTemplate(read('gpt2'), true)).toBe(false);
    expect(hasChatTemplate(new CharTokenizer([...'abc']), false)).toBe(true);
    expect(hasChatTemplate(new CharTokenizer([...'abc']), true)).toBe(false);
  });
});
