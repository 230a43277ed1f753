// Validates Kubernetes objects against prometheus-operator's CRD schemas, with the JSON
// schemas @kubernetes-models/prometheus-operator (npm, MIT) generates from them.
//
// stdin:  a JSON list of objects (PrometheusRule, ServiceMonitor, PodMonitor of
//         monitoring.coreos.com/v1)
// stdout: a JSON list, one entry per object: null when valid, else what the schema refuses
// An error (unreadable input) is one line on stderr and exit 1.
import { readFileSync } from 'node:fs';
import { monitoringCoreosCom } from '@kubernetes-models/prometheus-operator';

const KINDS = monitoringCoreosCom.v1;

function check(object) {
  if (object?.apiVersion !== 'monitoring.coreos.com/v1') {
    return `apiVersion ${JSON.stringify(object?.apiVersion)}: not monitoring.coreos.com/v1`;
  }
  const Kind = ['PrometheusRule', 'ServiceMonitor', 'PodMonitor'].includes(object.kind)
    ? KINDS[object.kind]
    : null;
  if (!Kind) return `kind ${JSON.stringify(object.kind)}: not checked here`;
  try {
    new Kind(object).validate();
    return null;
  } catch (error) {
    return error.message;
  }
}

try {
  const objects = JSON.parse(readFileSync(0, 'utf8'));
  process.stdout.write(JSON.stringify(objects.map(check)));
} catch (error) {
  process.stderr.write(`crd.mjs: ${error.message}\n`);
  process.exit(1);
}
