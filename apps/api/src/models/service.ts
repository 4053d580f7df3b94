// Models: the base presets (untrained shapes) and the project's trained models.
import { CrucibleError, isPreset, type ModelObject, type ModelRecord, PRESETS } from '@crucible/domain';
import { keys } from '@crucible/storage';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { unix } from '../pagination';
import { tarGz } from './tar';

const PRESET_CREATED = 1764374400; // 2025-11-29, when the presets were defined

function presetObject(name: keyof typeof PRESETS): ModelObject {
  return { id: name, object: 'model', created: PRESET_CREATED, owned_by: 'crucible', arch: PRESETS[name].arch, base_model: null, fine_tuning_job: null };
}

function modelObject(m: ModelRecord): ModelObject {
  return {
    id: m.id,
    object: 'model',
    created: unix(m.createdAt) as number,
    owned_by: m.projectId,
    arch: m.arch,
    base_model: m.baseModel,
    fine_tuning_job: m.jobId,
  };
}

export async function listModels(deps: Pick<Deps, 'store'>, actor: Actor) {
  const rows = await deps.store.models.list(actor.projectId);
  return { object: 'list' as const, data: [...Object.keys(PRESETS).map((n) => presetObject(n as keyof typeof PRESETS)), ...rows.map(modelObject)] };
}

export async function getModel(deps: Pick<Deps, 'store'>, actor: Actor, id: string, param = 'model'): Promise<ModelRecord> {
  const m = await deps.store.models.get(actor.projectId, id);
  if (!m) {
    if (isPreset(id)) throw new CrucibleError('invalid_request', `${id} is a base preset with no trained weights; train a model from it first`, param);
    throw new CrucibleError('model_not_found', `model ${id} does not exist in this project`, param);
  }
  return m;
}

export async function retrieveModel(deps: Pick<Deps, 'store'>, actor: Actor, id: string): Promise<ModelObject> {
  if (isPreset(id)) return presetObject(id);
  return modelObject(await getModel(deps, actor, id));
}

export async function deleteModel(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string) {
  if (isPreset(id)) throw new CrucibleError('invalid_request', 'base presets cannot be deleted', 'model');
  const m = await getModel(deps, actor, id);
  await deps.store.models.delete(actor.projectId, m.id);
  await deps.storage.deletePrefix(keys.modelPrefix(actor.projectId, m.id));
  return { id, object: 'model' as const, deleted: true };
}

/** model.safetensors (weights + config + tokenizer in its metadata), config.json and tokenizer.json. */
export async function modelArchive(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string): Promise<{ name: string; body: Buffer }> {
  const m = await getModel(deps, actor, id);
  const prefix = keys.modelPrefix(actor.projectId, m.id);
  const names = ['model.safetensors', 'config.json', 'tokenizer.json'];
  const files = await Promise.all(names.map(async (name) => ({ name, data: await deps.storage.get(prefix + name) })));
  return { name: `${m.id.replace(/[^A-Za-z0-9_.-]/g, '_')}.tar.gz`, body: tarGz(files) };
}
