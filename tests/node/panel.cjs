// What Grafana shows for one table or stat panel, computed by Grafana's own code (the
// @grafana/data package): the panel's transformations, its field config (defaults and
// overrides: units, thresholds) and, for a stat, its reduction to display values.
//
// stdin:  a list of {"panel": <a panel's JSON from grafana/dashboards>, "frames": [<data frame>...]}
//         a data frame: {"refId", "fields": [{"name", "type", "values", "labels"?, "config"?}]}
//         (numbers as Prometheus writes them: strings, "NaN", "+Inf", "-Inf")
// stdout: a list, one per panel: table: {"tables": [{"columns": [name...], "rows": [[{"text", "numeric", "color"}...]]}]}
//         (a cell's colour only where the table paints it: a color-text or color-background cell)
//         stat:  {"values": [{"title", "text", "numeric", "color"}...]}
// An error is one line on stderr and exit 1.
'use strict';

const gd = require('@grafana/data');
const { firstValueFrom } = require('rxjs');

// @grafana/data expects a browser: set after the require (earlier, it takes the wrong paths)
globalThis.window = globalThis;
if (!globalThis.navigator) {
  globalThis.navigator = { language: 'en-US', languages: ['en-US'] };
}

// Grafana's app fills these registries at start; the package alone leaves them empty.
const seen = new Set();
gd.standardTransformersRegistry.setInit(() =>
  Object.values(gd.standardTransformers)
    .filter((t) => !seen.has(t.id) && seen.add(t.id))
    .map((t) => ({ id: t.id, name: t.name, transformation: () => t, editor: () => null })),
);
const asIs = (value) => value;
const option = (id, path, isCustom) => ({
  id, path, name: id, isCustom, process: asIs, shouldApply: () => true, override: null, editor: null,
});
const STANDARD = ['unit', 'decimals', 'min', 'max', 'thresholds', 'mappings', 'noValue', 'displayName', 'color', 'links'];
const CUSTOM = ['cellOptions', 'align', 'width', 'hidden'];
const registry = new gd.FieldConfigOptionsRegistry(() => [
  ...STANDARD.map((id) => option(id, id, false)),
  ...CUSTOM.map((path) => option(`custom.${path}`, path, true)),
]);
const theme = gd.createTheme();
const NAMED = ['red', 'yellow', 'green', 'blue', 'orange', 'purple', 'text'];
const colourName = (hex) => NAMED.find((n) => theme.visualization.getColorByName(n) === hex) ?? hex;

function number(value) {
  if (typeof value !== 'string') return value;
  if (value === '+Inf' || value === 'Inf') return Infinity;
  if (value === '-Inf') return -Infinity;
  return Number(value);
}

function frame(spec) {
  return gd.toDataFrame({
    refId: spec.refId,
    name: spec.name,
    fields: spec.fields.map((f) => ({
      name: f.name,
      type: f.type,
      labels: f.labels,
      config: f.config ?? {},
      values: f.type === 'number' ? f.values.map(number) : f.values,
    })),
  });
}

function shown(display) {
  const numeric = Number.isFinite(display.numeric) ? display.numeric : null;
  const text = `${display.prefix ?? ''}${display.text}${display.suffix ?? ''}`;
  return { text, numeric, color: colourName(display.color) };
}

async function draw(input) {
  const { panel } = input;
  const frames = await firstValueFrom(
    gd.transformDataFrame(panel.transformations ?? [], input.frames.map(frame)),
  );
  const data = gd.applyFieldOverrides({
    data: frames,
    fieldConfig: panel.fieldConfig,
    fieldConfigRegistry: registry,
    replaceVariables: asIs,
    theme,
    timeZone: 'utc',
  });
  if (panel.type === 'table') {
    const tables = data.map((f) => {
      const fields = f.fields.filter((field) => !field.config.custom?.hidden);
      return {
        columns: fields.map((field) => gd.getFieldDisplayName(field, f, data)),
        rows: Array.from({ length: f.length }, (_, i) =>
          fields.map((field) => {
            const value = field.values[i];
            if (value === null || value === undefined) return { text: '', numeric: null, color: null };
            const cell = shown(field.display(value));
            // the table paints a cell's colour only with a colour cell type
            const painted = String(field.config.custom?.cellOptions?.type ?? '').startsWith('color-');
            if (!painted) cell.color = null;
            return field.type === 'number' ? cell : { ...cell, numeric: null, text: String(value) };
          }),
        ),
      };
    });
    return { tables };
  }
  if (panel.type === 'stat') {
    const values = gd.getFieldDisplayValues({
      data,
      fieldConfig: panel.fieldConfig,
      reduceOptions: panel.options.reduceOptions,
      replaceVariables: asIs,
      theme,
      timeZone: 'utc',
    });
    return { values: values.map((v) => ({ title: v.display.title, ...shown(v.display) })) };
  }
  throw new Error(`panel type ${panel.type}: only table and stat panels are computed here`);
}

async function main() {
  const inputs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const drawn = [];
  for (const input of inputs) drawn.push(await draw(input));
  return drawn;
}

main().then(
  (result) => process.stdout.write(JSON.stringify(result)),
  (error) => {
    process.stderr.write(`panel.cjs: ${error && error.message ? error.message : error}\n`);
    process.exit(1);
  },
);
