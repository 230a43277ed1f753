// Validates Kubernetes objects against prometheus-operator's CRD schemas twice, with what
// @kubernetes-models/prometheus-operator (npm, MIT) generates from them:
// - its JSON schema validators: types, patterns (durations), enums, required fields;
// - its TypeScript types, by the TypeScript compiler's excess property check: a misspelt or
//   unknown field (`relabellings`, `scrapeTimout`), which the schemas let through and the
//   API server would drop or refuse.
//
// stdin:  a JSON list of objects (PrometheusRule, ServiceMonitor, PodMonitor of
//         monitoring.coreos.com/v1)
// stdout: a JSON list, one entry per object: null when valid, else what is refused
// An error (unreadable input) is one line on stderr and exit 1.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitoringCoreosCom } from '@kubernetes-models/prometheus-operator';

const here = dirname(fileURLToPath(import.meta.url));
const ts = createRequire(import.meta.url)('typescript');
const KINDS = ['PrometheusRule', 'ServiceMonitor', 'PodMonitor'];

function schemaError(object) {
  if (object?.apiVersion !== 'monitoring.coreos.com/v1') {
    return `apiVersion ${JSON.stringify(object?.apiVersion)}: not monitoring.coreos.com/v1`;
  }
  if (!KINDS.includes(object.kind)) return `kind ${JSON.stringify(object.kind)}: not checked here`;
  try {
    new monitoringCoreosCom.v1[object.kind](object).validate();
    return null;
  } catch (error) {
    return error.message;
  }
}

// One typed constant per object, one per line: a diagnostic's line is its object's index.
function typeErrors(objects) {
  const errors = objects.map(() => null);
  const checked = objects.map((o, i) => [o, i]).filter(([o]) => KINDS.includes(o?.kind));
  if (checked.length === 0) return errors;
  const imports = KINDS.map(
    (k) => `import type { I${k} } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${k}";`,
  );
  const lines = [...imports, ...objects.map((o, i) =>
    KINDS.includes(o?.kind) ? `export const object${i}: I${o.kind} = ${JSON.stringify(o)};` : '')];
  const folder = mkdtempSync(join(here, '.crd-'));
  try {
    const file = join(folder, 'objects.ts');
    writeFileSync(file, lines.join('\n'));
    const program = ts.createProgram([file], {
      strict: true, noEmit: true, skipLibCheck: true,
      module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    });
    for (const d of ts.getPreEmitDiagnostics(program)) {
      const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
      if (!d.file || d.file.fileName !== file) throw new Error(message);
      const index = d.file.getLineAndCharacterOfPosition(d.start).line - imports.length;
      errors[index] = errors[index] ? `${errors[index]}; ${message}` : message;
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  return errors;
}

try {
  const objects = JSON.parse(readFileSync(0, 'utf8'));
  const types = typeErrors(objects);
  process.stdout.write(JSON.stringify(objects.map((o, i) => schemaError(o) ?? types[i])));
} catch (error) {
  process.stderr.write(`crd.mjs: ${error.message}\n`);
  process.exit(1);
}
