// The webhook outbox, and the one place its SQL lives. A job or an evaluation reaching an ending
// status (domain's WEBHOOK_ENDINGS) writes one delivery per endpoint subscribed to that event, in
// the transaction of the status change, whoever makes it (API, worker, reconciler, an operator's
// SQL): a trigger on the resource's table. A delivery holds the event's id, type and resource;
// its body is domain's webhookEvent() of those, built when it is sent or listed. The SQL is made
// from domain's declarations, so a new resource or ending is declared once, in TypeScript;
// deployMigrations installs it whenever what is installed differs.
import { createHash } from 'node:crypto';
import { ID_PREFIX, WEBHOOK_ENDINGS, WEBHOOK_RESOURCES, type WebhookResource } from '@crucible/domain';
import type pg from 'pg';

/** The table whose rows each resource's events are about. */
export const WEBHOOK_RESOURCE_TABLES: Record<WebhookResource, string> = { 'fine_tuning.job': 'jobs', evaluation: 'evaluations' };

const FUNCTION = 'crucible_webhook_outbox';

/** A SQL literal of a declared constant (never of input). */
const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** The outbox function and one trigger per resource table. */
export function webhookOutboxSql(): string {
  const randomId = (prefix: string, seed: string) => `${literal(`${prefix}-`)} || substr(md5(random()::text || clock_timestamp()::text || ${seed}), 1, 24)`;
  const fn = `CREATE OR REPLACE FUNCTION ${FUNCTION}() RETURNS trigger AS $$
DECLARE
  v_type TEXT := TG_ARGV[0] || '.' || NEW.status;
  v_event TEXT := ${randomId(ID_PREFIX.webhookEvent, 'NEW.id')};
BEGIN
  IF NEW.status IS NOT DISTINCT FROM OLD.status OR NEW.status NOT IN (${WEBHOOK_ENDINGS.map(literal).join(', ')}) THEN
    RETURN NEW;
  END IF;
  INSERT INTO webhook_deliveries (id, project_id, endpoint_id, event_id, event_type, resource_id)
  SELECT ${randomId(ID_PREFIX.webhookDelivery, 'e.id')}, NEW.project_id, e.id, v_event, v_type, NEW.id
    FROM webhook_endpoints e
   WHERE e.project_id = NEW.project_id AND v_type = ANY (e.event_types);
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;`;
  const triggers = WEBHOOK_RESOURCES.map((r) => {
    const table = WEBHOOK_RESOURCE_TABLES[r];
    return `DROP TRIGGER IF EXISTS ${table}_webhook_outbox ON ${table};
CREATE TRIGGER ${table}_webhook_outbox AFTER UPDATE OF status ON ${table}
  FOR EACH ROW EXECUTE FUNCTION ${FUNCTION}(${literal(r)});`;
  });
  return [fn, ...triggers].join('\n\n');
}

/**
 * Installs the outbox in the caller's transaction when the installed one is another version (its
 * digest is the function's comment); true when it installed.
 */
export async function installWebhookOutbox(client: InstanceType<typeof pg.Client>): Promise<boolean> {
  const sql = webhookOutboxSql();
  const version = createHash('sha256').update(sql).digest('hex').slice(0, 16);
  const installed = await client.query<{ v: string | null }>(`SELECT obj_description(to_regprocedure('${FUNCTION}()'), 'pg_proc') AS v`);
  if (installed.rows[0]?.v === version) return false;
  await client.query(sql);
  await client.query(`COMMENT ON FUNCTION ${FUNCTION}() IS ${literal(version)}`);
  return true;
}
