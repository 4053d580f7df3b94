// The one place object keys are built. Every key starts with the owning project.
export const keys = {
  file: (projectId: string, fileId: string) => `projects/${projectId}/files/${fileId}`,
  checkpoint: (projectId: string, jobId: string, step: number) =>
    `projects/${projectId}/jobs/${jobId}/checkpoints/step-${String(step).padStart(8, '0')}.safetensors`,
  model: (projectId: string, modelId: string) => `projects/${projectId}/models/${encodeURIComponent(modelId)}/model.safetensors`,
  jobPrefix: (projectId: string, jobId: string) => `projects/${projectId}/jobs/${jobId}/`,
  modelPrefix: (projectId: string, modelId: string) => `projects/${projectId}/models/${encodeURIComponent(modelId)}/`,
  /** One file of a model's folder (model.safetensors, config.json, tokenizer.json, ...). */
  modelFile: (projectId: string, modelId: string, name: string) => `projects/${projectId}/models/${encodeURIComponent(modelId)}/${name}`,
};
