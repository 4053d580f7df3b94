// The server operator's tool for projects (no API key can raise its own project's limits):
//   npm run projects -- create <name> [--scopes read,write,admin,operator]   a project and its first key (printed once);
//                                                                    operator keys may create projects over the API
//   npm run projects -- limits <project-id>                          the limits in force
//   npm run projects -- limits <project-id> max_queued_jobs=50 rate_limit_rpm=0 ...
//   npm run projects -- limits <project-id> --reset                  back to the server's defaults
// A change reaches every API process at once (their key caches are told over Redis).
import { createStore } from '@crucible/db';
import { ConfigError, effectiveLimits, KEY_SCOPES, type KeyScope, LIMIT_FIELDS, type LimitOverrides, limitsObject } from '@crucible/domain';
import { redisConnection } from '@crucible/queue';
import { ALL_SCOPES, createProjectWithKey, keyEventsChannel } from '../src/auth';
import { parseApiConfig } from '../src/config';

function parseOverrides(args: string[]): LimitOverrides {
  const out: LimitOverrides = {};
  for (const a of args) {
    const m = /^([a-z_]+)=(\d+)$/.exec(a);
    if (!m || !((m[1] as string) in LIMIT_FIELDS))
      throw new Error(`expected <limit>=<integer> with a limit among ${Object.keys(LIMIT_FIELDS).join(', ')}; got ${a}`);
    out[m[1] as keyof LimitOverrides] = Number(m[2]);
  }
  return out;
}

try {
  const cfg = parseApiConfig(process.env);
  const store = createStore(cfg.databaseUrl);
  const [command, target, ...rest] = process.argv.slice(2);
  try {
    if (command === 'create') {
      const flag = rest.indexOf('--scopes');
      const scopes = (flag >= 0 ? (rest[flag + 1] ?? '').split(',') : [...ALL_SCOPES]) as KeyScope[];
      if (scopes.some((s) => !KEY_SCOPES.includes(s))) throw new Error(`scopes are ${KEY_SCOPES.join(', ')}`);
      const { projectId, secret } = await createProjectWithKey(store, target ?? 'default', scopes);
      console.log(`project ${projectId}\napi key ${secret}`);
    } else if (command === 'limits' && target) {
      const project = await store.projects.get(target);
      if (!project) throw new Error(`no project ${target}`);
      let overrides = project.limits as LimitOverrides | null;
      if (rest.length) {
        overrides = rest.includes('--reset') ? null : { ...(overrides ?? {}), ...parseOverrides(rest) };
        await store.projects.setLimits(target, overrides as Record<string, number> | null);
        const redis = redisConnection(cfg.redisUrl, 'command');
        await redis.publish(keyEventsChannel(cfg.queuePrefix), '*');
        redis.disconnect();
      }
      const limits = limitsObject(effectiveLimits(cfg.limits, overrides));
      for (const [k, v] of Object.entries(limits)) console.log(`${k.padEnd(22)} ${v}${overrides && k in overrides ? '  (project override)' : ''}`);
    } else {
      throw new Error('usage: projects create <name> [--scopes read,write,admin,operator] | projects limits <project-id> [limit=value ... | --reset]');
    }
  } finally {
    await store.close();
  }
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : (err as Error).message);
  process.exit(1);
}
