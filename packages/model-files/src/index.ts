// @crucible/model-files: the files a model is made of, readable without TensorFlow.js (the API
// validates imports and builds downloads with it; the trainer reads and writes through it).

export * from './chat-template';
export * from './checkpoint-file';
export * from './hf-decoder';
export * from './hf-gpt2';
export * from './model-folder';
export * from './params';
export * from './peft';
export * from './safetensors';
export * from './tokenizer';
