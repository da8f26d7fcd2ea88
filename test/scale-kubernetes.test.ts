// The Kubernetes manifests (deploy/kubernetes, kustomize) are checked here without a cluster: every
// file parses, every object has the fields the deployment relies on, the kustomization lists what
// exists, and the in-cluster balancer routes by exactly the rule of deploy/loadbalancer/haproxy.cfg
// (which the load-balancer test runs for real).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_LIMITS } from '../server/limits.js';
import { haproxyPath } from '../bench/cluster.js';

const DIR = fileURLToPath(new URL('../deploy/kubernetes/', import.meta.url));
const LB = fileURLToPath(new URL('../deploy/loadbalancer/haproxy.cfg', import.meta.url));
const K8S_LB = `${DIR}balancer/haproxy.cfg`;

type Obj = Record<string, any>;

function load(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(`${DIR}${file}`, 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors, [], `${file}: ${d.errors.map((e) => e.message).join('; ')}`);
  return docs.map((d) => d.toJS() as Obj).filter((o) => o !== null);
}

const kustomization = load('kustomization.yaml')[0]!;
const objects = (kustomization.resources as string[]).flatMap((f) => load(f));
const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
const one = (kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata?.name === name);
  assert.ok(o, `${kind}/${name} exists`);
  return o!;
};

test('every manifest parses, each object has apiVersion, kind and name, and the kustomization lists every manifest', () => {
  const yamlFiles = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
  assert.deepEqual([...(kustomization.resources as string[])].sort(), yamlFiles, 'nothing left out, nothing missing');
  for (const o of objects) {
    assert.equal(typeof o.apiVersion, 'string');
    assert.equal(typeof o.kind, 'string');
    assert.match(o.metadata?.name ?? '', /^[a-z0-9-]+$/);
  }
  for (const g of kustomization.configMapGenerator as Obj[]) {
    for (const f of g.files as string[]) assert.ok(existsSync(`${DIR}${f.split('=').pop()}`), `${f} exists`);
  }
  const tdx = parseAllDocuments(readFileSync(`${DIR}overlays/tdx/kustomization.yaml`, 'utf8'))[0]!.toJS() as Obj;
  assert.equal(tdx.resources.length, 1);
  assert.equal(path.resolve(`${DIR}overlays/tdx`, tdx.resources[0]) + '/', DIR, 'the overlay builds on the base');
  assert.match(JSON.stringify(tdx.patches), /kata-qemu-tdx/);
});

test('the replicas: confidential runtime, non-root, read-only root, probes, resources, drain longer than the server\'s grace', () => {
  const d = one('Deployment', 'sealed-replicas');
  assert.ok(d.spec.replicas >= 2);
  const pod = d.spec.template.spec;
  assert.equal(pod.runtimeClassName, 'kata-qemu-snp');
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.equal(pod.automountServiceAccountToken, false);
  const c = pod.containers[0];
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c.livenessProbe.httpGet.path, '/healthz');
  for (const k of ['cpu', 'memory']) assert.ok(c.resources.requests[k], `requests.${k}`);
  assert.ok(c.resources.limits.memory);
  // The pod must outlive the server's own drain (grace + 2 s to unwind) and the balancer's 2 s to react.
  const graceArg = (c.args as string[]).find((a) => a.startsWith('--shutdown-grace-ms='));
  const graceMs = graceArg ? Number(graceArg.split('=')[1]) : DEFAULT_LIMITS.shutdownGraceMs;
  assert.ok(pod.terminationGracePeriodSeconds * 1000 > graceMs + 4000, `${pod.terminationGracePeriodSeconds} s vs grace ${graceMs} ms`);
  assert.ok((c.args as string[]).includes('--platform=auto'), 'never simulated in a cluster');
  assert.ok((c.args as string[]).some((a) => a.startsWith('--trust-proxy=')), 'the balancer may name the client address');
  assert.equal(d.spec.strategy.rollingUpdate.maxUnavailable, 0);
});

test('disruption budget, autoscaler, services and ingress', () => {
  const pdb = one('PodDisruptionBudget', 'sealed-replicas');
  assert.equal(pdb.spec.maxUnavailable, 1);
  assert.deepEqual(pdb.spec.selector.matchLabels, one('Deployment', 'sealed-replicas').spec.selector.matchLabels);
  const hpa = one('HorizontalPodAutoscaler', 'sealed-replicas');
  assert.equal(hpa.spec.scaleTargetRef.name, 'sealed-replicas');
  assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');
  assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas <= 16, 'within the balancer\'s 16 server slots');
  const headless = one('Service', 'sealed-replicas');
  assert.equal(headless.spec.clusterIP, 'None', 'headless: the balancer resolves each replica itself');
  assert.equal(headless.spec.ports[0].name, 'http', 'the SRV record _http._tcp needs the port named http');
  const front = one('Service', 'sealed');
  assert.deepEqual(front.spec.selector, { 'app.kubernetes.io/name': 'sealed-balancer' });
  const ing = one('Ingress', 'sealed');
  assert.equal(ing.spec.rules[0].http.paths[0].backend.service.name, 'sealed', 'all traffic goes through the balancer');
  assert.equal(ing.metadata.annotations['nginx.ingress.kubernetes.io/proxy-buffering'], 'off', 'streams pass through unbuffered');
  const balancer = one('Deployment', 'sealed-balancer');
  const env = Object.fromEntries((balancer.spec.template.spec.containers[0].env as Obj[]).map((e) => [e.name, e.value]));
  assert.equal(env.SEALED_REPLICAS_SRV, `_http._tcp.${headless.metadata.name}.${kustomization.namespace}.svc.cluster.local`);
  assert.equal(byKind('Namespace')[0]!.metadata.name, kustomization.namespace);
});

/** The lines of a backend section that decide where a request goes and when a replica is out. */
function routingRule(cfg: string, backend: string): string[] {
  const lines = cfg.split('\n');
  const start = lines.findIndex((l) => l.trim() === `backend ${backend}`);
  assert.ok(start >= 0, `backend ${backend}`);
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (/^\S/.test(l)) break;
    const t = l.trim();
    if (/^(balance|hash-type|option httpchk|http-check|default-server)\b/.test(t)) out.push(t);
  }
  return out;
}

test('the in-cluster balancer hashes the same path prefix, by the same rule, as deploy/loadbalancer/haproxy.cfg', () => {
  const lb = readFileSync(LB, 'utf8');
  const k8s = readFileSync(K8S_LB, 'utf8');
  const rule = routingRule(lb, 'sessions');
  assert.ok(rule.includes('balance uri depth 3 path-only'), 'the key is /v1/sessions/{sid}');
  assert.ok(rule.includes('hash-type consistent'));
  assert.deepEqual(routingRule(k8s, 'sessions'), rule);
  assert.deepEqual(routingRule(k8s, 'probes'), routingRule(lb, 'probes'));
  // Everything outside the server lines is the same configuration.
  const strip = (cfg: string) => cfg.split('\n').filter((l) => !/^\s*(#|server |server-template |$)/.test(l) && !/^resolvers|^\s+(parse-resolv-conf|hold )/.test(l));
  assert.deepEqual(strip(k8s), strip(lb));
});

test('HAProxy accepts both configurations', { skip: haproxyPath() ? false : 'haproxy is not installed' }, () => {
  const haproxy = haproxyPath()!;
  const lb = spawnSync(haproxy, ['-c', '-q', '-f', LB], {
    env: { ...process.env, SEALED_LB_BIND: '127.0.0.1:1', SEALED_REPLICA_1: '127.0.0.1:2', SEALED_REPLICA_2: '127.0.0.1:3', SEALED_REPLICA_3: '127.0.0.1:4' },
  });
  assert.equal(lb.status, 0, lb.stderr.toString());
  const k8s = spawnSync(haproxy, ['-c', '-q', '-f', K8S_LB], {
    env: { ...process.env, SEALED_LB_BIND: ':8080', SEALED_REPLICAS_SRV: '_http._tcp.sealed-replicas.sealed.svc.cluster.local' },
  });
  assert.equal(k8s.status, 0, k8s.stderr.toString());
});
