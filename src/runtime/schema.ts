import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule, { type FormatsPlugin } from 'ajv-formats';
import { internal } from '../base/errors.js';
import configSchema from './schema/config-schema.json' with { type: 'json' };
import configLinux from './schema/config-linux.json' with { type: 'json' };
import defs from './schema/defs.json' with { type: 'json' };
import defsLinux from './schema/defs-linux.json' with { type: 'json' };

/*
 * The runtime-spec JSON schema (copied from opencontainers/runtime-spec schema/ into ./schema). It is written for
 * draft-04, which Ajv 8 runs as draft-07 once "$schema" is dropped: these files use no keyword whose meaning
 * changed. Platforms berth never writes (solaris, windows, vm, zos, freebsd) are not shipped and accept anything.
 */

// ajv-formats is CommonJS: Node hands over module.exports, bundlers may hand over exports.default.
const addFormats = (addFormatsModule as unknown as { default?: FormatsPlugin }).default ?? (addFormatsModule as unknown as FormatsPlugin);

const OTHER_PLATFORMS = ['solaris', 'windows', 'vm', 'zos', 'freebsd'];

let validator: ValidateFunction | undefined;

function withoutDraft(schema: object, id: string): object {
  const { $schema: _draft, ...rest } = schema as { $schema?: string };
  return { ...rest, $id: id };
}

function compile(): ValidateFunction {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(withoutDraft(defs, 'defs.json'));
  ajv.addSchema(withoutDraft(defsLinux, 'defs-linux.json'));
  ajv.addSchema(withoutDraft(configLinux, 'config-linux.json'));
  for (const p of OTHER_PLATFORMS) ajv.addSchema({ $id: `config-${p}.json`, [p]: {} });
  return ajv.compile(withoutDraft(configSchema, 'config-schema.json'));
}

function describe(e: ErrorObject): string {
  const where = e.instancePath || '/';
  if (e.keyword === 'enum') return `${where} ${e.message} (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})`;
  return `${where} ${e.message}`;
}

/** Checks a spec against the runtime-spec schema; an invalid one is berth's bug, so the error is 'internal'. */
export function validateSpec(spec: unknown): void {
  validator ??= compile();
  if (validator(spec)) return;
  const errors = [...new Set((validator.errors ?? []).map(describe))];
  throw internal(`invalid runtime spec: ${errors.slice(0, 10).join('; ')}${errors.length > 10 ? `; and ${errors.length - 10} more` : ''}`);
}
