/**
 * The Helm chart: `helm lint --strict` and `helm template` with the default values and each ci/*-values.yaml,
 * then the rendered objects checked for what the chart promises (restricted pods, gRPC probes on the health
 * port, LINKGW_RATE_LIMIT_REPLICAS from the replica count, hooks, bring-your-own or chart-made Secrets), and
 * deploy/kubernetes/gateway.yaml checked to be the chart's current output.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KNOWN_VARIABLES, PACKAGE_ROOT } from '../../src/config/settings.js';
import { itWithTool, tool } from '../helpers/deploy-tools.js';

const CHART = join(PACKAGE_ROOT, 'deploy', 'helm', 'linkgw');
const KUBE_VERSION = '1.30.0';
const CI_VALUES = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml'));
const withHelm = itWithTool('helm');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type K8s = any;

function helm(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(tool('helm'), args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function render(args: string[] = []): K8s[] {
  const r = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, ...args]);
  expect(r.status, r.out).toBe(0);
  return parseAllDocuments(r.out)
    .map((d) => d.toJS())
    .filter((o) => o && typeof o === 'object');
}

const find = (objs: K8s[], kind: string, name?: string) => objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
const one = (objs: K8s[], kind: string, name?: string) => {
  const found = find(objs, kind, name);
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0];
};

/** Every pod template in the objects: StatefulSet, Job, CronJob. */
function podSpecs(objs: K8s[]): [string, K8s][] {
  return objs.flatMap((o): [string, K8s][] => {
    if (o.kind === 'StatefulSet' || o.kind === 'Deployment' || o.kind === 'Job') return [[`${o.kind}/${o.metadata.name}`, o.spec.template.spec]];
    if (o.kind === 'CronJob') return [[`${o.kind}/${o.metadata.name}`, o.spec.jobTemplate.spec.template.spec]];
    return [];
  });
}

function configOf(objs: K8s[]): Record<string, string> {
  return one(objs, 'ConfigMap', 'linkgw-config').data;
}

describe('helm chart deploy/helm/linkgw', () => {
  withHelm('passes helm lint --strict with the default values and every ci/*-values.yaml', () => {
    expect(CI_VALUES.length).toBeGreaterThanOrEqual(2);
    for (const values of [undefined, ...CI_VALUES]) {
      const r = helm(['lint', CHART, '--strict', '--kube-version', KUBE_VERSION, ...(values ? ['-f', join(CHART, 'ci', values)] : [])]);
      expect(r.status, `${values ?? 'default values'}: ${r.out}`).toBe(0);
      expect(r.out).toContain('0 chart(s) failed');
    }
  });

  withHelm('renders pods that meet the restricted Pod Security Standard, with every value file', () => {
    for (const values of [undefined, ...CI_VALUES]) {
      const objs = render(values ? ['-f', join(CHART, 'ci', values)] : []);
      const pods = podSpecs(objs);
      expect(pods.map(([n]) => n).sort()).toEqual(['CronJob/linkgw-records-purge', 'CronJob/linkgw-records-seal', 'CronJob/linkgw-records-verify', 'Job/linkgw-migrate', 'StatefulSet/linkgw']);
      for (const [name, pod] of pods) {
        const where = `${values ?? 'defaults'} ${name}`;
        expect(pod.automountServiceAccountToken, where).toBe(false);
        expect(pod.hostNetwork ?? false, where).toBe(false);
        expect(pod.securityContext.runAsNonRoot, where).toBe(true);
        expect(pod.securityContext.seccompProfile.type, where).toBe('RuntimeDefault');
        for (const v of pod.volumes ?? []) expect(v.hostPath, where).toBeUndefined();
        for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
          expect(c.securityContext.allowPrivilegeEscalation, where).toBe(false);
          expect(c.securityContext.readOnlyRootFilesystem, where).toBe(true);
          expect(c.securityContext.capabilities.drop, where).toEqual(['ALL']);
          expect(c.securityContext.capabilities.add, where).toBeUndefined();
          expect(c.securityContext.privileged ?? false, where).toBe(false);
          expect(c.resources.requests, where).toBeDefined();
          // /tmp is writable where the root filesystem is not.
          expect(c.volumeMounts.map((m: K8s) => m.mountPath), where).toContain('/tmp');
        }
      }
      expect(one(objs, 'ServiceAccount').automountServiceAccountToken).toBe(false);
    }
  });

  withHelm('with the defaults: production settings, gRPC probes on the health port, a headless agency Service', () => {
    const objs = render();
    const config = configOf(objs);
    expect(config).toMatchObject({
      LINKGW_SIMULATE: '0',
      LINKGW_LISTEN: '0.0.0.0:50051',
      LINKGW_METRICS_LISTEN: '0.0.0.0:9464',
      LINKGW_HEALTH_LISTEN: '0.0.0.0:8081',
      LINKGW_RATE_LIMIT_REPLICAS: '3',
      LINKGW_TLS_CA: '/etc/linkgw/tls/ca.crt',
      LINKGW_AGENCIES: '/etc/linkgw/policy/agencies.json',
      // The hook Job migrates; the gateways only check the schema (their role needs no DDL rights).
      LINKGW_RECORDS_MIGRATE: 'verify',
    });
    expect(find(objs, 'Secret')).toEqual([]);
    const deploy = one(objs, 'StatefulSet', 'linkgw');
    expect(deploy.spec.replicas).toBe(3);
    const pod = deploy.spec.template.spec;
    expect(pod.enableServiceLinks).toBe(false);
    const c = pod.containers[0];
    expect(c.args).toEqual(['serve']);
    expect(c.startupProbe.grpc).toEqual({ port: 8081 });
    expect(c.readinessProbe.grpc).toEqual({ port: 8081 });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.ports.map((p: K8s) => `${p.name}:${p.containerPort}`)).toEqual(['grpc:50051', 'metrics:9464', 'health:8081']);
    const env = Object.fromEntries(c.env.map((e: K8s) => [e.name, e.valueFrom.secretKeyRef ?? e.valueFrom.fieldRef]));
    expect(env).toEqual({ LINKGW_REPLICA_ID: { fieldPath: 'metadata.name' }, LINKGW_RECORDS_URL: { name: 'linkgw-records', key: 'url' }, LINKGW_REDIS_URL: { name: 'linkgw-redis', key: 'url' } });
    expect(pod.volumes.find((v: K8s) => v.name === 'keyring').secret.secretName).toBe('linkgw-keyring');
    // The policy is a directory mount (ConfigMap updates arrive), the keyring a file in the data dir.
    expect(c.volumeMounts.find((m: K8s) => m.name === 'policy')).toEqual({ name: 'policy', mountPath: '/etc/linkgw/policy', readOnly: true });
    expect(c.volumeMounts.find((m: K8s) => m.name === 'keyring').mountPath).toBe('/var/lib/linkgw/keyring.json');
    expect(pod.topologySpreadConstraints.map((t: K8s) => t.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    for (const t of pod.topologySpreadConstraints) expect(t.labelSelector.matchLabels).toEqual(deploy.spec.selector.matchLabels);

    const svc = one(objs, 'Service', 'linkgw');
    expect(svc.spec.clusterIP).toBe('None');
    expect(svc.spec.ports).toEqual([{ name: 'grpc', port: 50051, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'grpc' }]);
    expect(one(objs, 'Service', 'linkgw-metrics').spec.ports[0].port).toBe(9464);
    expect(find(objs, 'Service', 'linkgw-lb')).toEqual([]);
    expect(one(objs, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    expect(find(objs, 'HorizontalPodAutoscaler')).toEqual([]);
    expect(find(objs, 'ServiceMonitor')).toEqual([]);
    const np = one(objs, 'NetworkPolicy');
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress[0]).toEqual({ ports: [{ port: 'grpc', protocol: 'TCP' }] });

    const job = one(objs, 'Job', 'linkgw-migrate');
    expect(job.metadata.annotations['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(job.spec.template.spec.containers[0].args).toEqual(['migrate']);
    // The records Secret is brought by the operator, so it exists before the hook: no hook Secret.
    expect(job.spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef).toEqual({ name: 'linkgw-records', key: 'url' });
    const cron = one(objs, 'CronJob', 'linkgw-records-verify');
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    expect(cron.spec.jobTemplate.spec.template.spec.containers[0].args).toEqual(['records', 'verify']);
  });

  withHelm('runs the gateways as a StatefulSet: each pod\'s stable name is its LINKGW_REPLICA_ID, so its log outlives restarts and rollouts', () => {
    const objs = render();
    expect(find(objs, 'Deployment')).toEqual([]);
    const sts = one(objs, 'StatefulSet', 'linkgw');
    // The headless agency Service governs the pod names; pods start and stop in parallel.
    expect(sts.spec.serviceName).toBe(one(objs, 'Service', 'linkgw').metadata.name);
    expect(one(objs, 'Service', 'linkgw').spec.clusterIP).toBe('None');
    expect(sts.spec.podManagementPolicy).toBe('Parallel');
    expect(sts.spec.updateStrategy).toEqual({ type: 'RollingUpdate' });
    const c = sts.spec.template.spec.containers[0];
    expect(c.env.find((e: K8s) => e.name === 'LINKGW_REPLICA_ID').valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    // Each revision spreads on its own during a rollout (StatefulSet pods carry controller-revision-hash).
    for (const t of sts.spec.template.spec.topologySpreadConstraints) expect(t.matchLabelKeys).toEqual(['controller-revision-hash']);
    // Scaling down: SIGTERM and a grace long enough for the writer to sign its last records.
    expect(sts.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(15);
    // The HPA scales the StatefulSet; the replica id is the chart's, not a setting.
    const hpa = one(render(['--set', 'autoscaling.enabled=true']), 'HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'linkgw' });
    const own = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'config.LINKGW_REPLICA_ID=fixed']);
    expect(own.status).not.toBe(0);
    expect(own.out).toContain('config.LINKGW_REPLICA_ID is set by the chart');
  });

  withHelm('seals logs whose gateway is gone, and purges records past retention, each from a CronJob of its own', () => {
    const objs = render();
    const job = (name: string) => {
      const cron = one(objs, 'CronJob', name);
      const pod = cron.spec.jobTemplate.spec.template.spec;
      return { cron, pod, c: pod.containers[0], env: Object.fromEntries(pod.containers[0].env.map((e: K8s) => [e.name, e.value ?? e.valueFrom.secretKeyRef])) };
    };
    const seal = job('linkgw-records-seal');
    expect(seal.c.args).toEqual(['records', 'seal', '--json']);
    expect(seal.cron.spec).toMatchObject({ schedule: '7 * * * *', concurrencyPolicy: 'Forbid' });
    expect(seal.cron.spec.jobTemplate.spec.backoffLimit).toBe(0);
    // It signs: the keyring is mounted. It writes checkpoints: the records (runtime, writer) role by default.
    expect(seal.c.volumeMounts.find((m: K8s) => m.name === 'keyring').mountPath).toBe('/var/lib/linkgw/keyring.json');
    expect(seal.env.LINKGW_RECORDS_URL).toEqual({ name: 'linkgw-records', key: 'url' });
    expect(seal.c.resources.requests).toBeDefined();

    const purge = job('linkgw-records-purge');
    expect(purge.c.args).toEqual(['records', 'purge', '--before', '7y', '--json']);
    expect(purge.cron.spec).toMatchObject({ schedule: '43 2 1 * *', concurrencyPolicy: 'Forbid' });
    // A purge is idempotent: a failed run is retried at once, so a half-way purge is finished soon.
    expect(purge.cron.spec.jobTemplate.spec.backoffLimit).toBe(2);
    expect(purge.c.resources).toEqual({ requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '2Gi' } });
    expect(purge.c.volumeMounts.map((m: K8s) => m.name)).toContain('keyring');

    // Its own values: schedule, retention, resources, a Secret of its own; or off.
    const tuned = render(['--set', 'recordsPurge.before=10y,recordsPurge.schedule=0 4 * * 0,recordsPurge.existingSecret=owner,recordsSeal.existingSecret=writer,recordsSeal.secretKey=dsn,recordsPurge.resources.requests.cpu=1']);
    const tp = one(tuned, 'CronJob', 'linkgw-records-purge');
    expect(tp.spec.schedule).toBe('0 4 * * 0');
    expect(tp.spec.jobTemplate.spec.template.spec.containers[0].args).toEqual(['records', 'purge', '--before', '10y', '--json']);
    expect(tp.spec.jobTemplate.spec.template.spec.containers[0].resources.requests.cpu).toBe(1);
    expect(tp.spec.jobTemplate.spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef).toEqual({ name: 'owner', key: 'url' });
    expect(one(tuned, 'CronJob', 'linkgw-records-seal').spec.jobTemplate.spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef).toEqual({ name: 'writer', key: 'dsn' });
    const off = render(['--set', 'recordsPurge.enabled=false,recordsSeal.enabled=false']);
    expect(find(off, 'CronJob').map((c: K8s) => c.metadata.name)).toEqual(['linkgw-records-verify']);
    const badAge = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'recordsPurge.before=seven years']);
    expect(badAge.status).not.toBe(0);
    expect(badAge.out).toContain('/recordsPurge/before');
  });

  withHelm('runs `linkgw migrate` as a hook Job without the keyring, or leaves migrations to the gateways (migrations.job.enabled=false)', () => {
    const objs = render(['-f', join(CHART, 'ci', 'chart-secrets-values.yaml')]);
    const job = one(objs, 'Job', 'linkgw-migrate');
    const pod = job.spec.template.spec;
    // A Job has no keyring: nothing of it is mounted or named (linkgw migrate never reads it).
    expect(JSON.stringify(pod)).not.toMatch(/keyring/);
    expect(pod.containers[0].env.map((e: K8s) => e.name).sort()).toEqual(['LINKGW_DATA_DIR', 'LINKGW_LOG_LEVEL', 'LINKGW_RECORDS_URL']);
    expect(configOf(objs).LINKGW_RECORDS_MIGRATE).toBe('verify');

    const off = render(['-f', join(CHART, 'ci', 'chart-secrets-values.yaml'), '--set', 'migrations.job.enabled=false']);
    expect(find(off, 'Job')).toEqual([]);
    expect(find(off, 'Secret', 'linkgw-migrations')).toEqual([]);
    expect(podSpecs(off).map(([n]) => n).sort()).toEqual(['CronJob/linkgw-records-purge', 'CronJob/linkgw-records-seal', 'CronJob/linkgw-records-verify', 'StatefulSet/linkgw']);
    // Without the Job each gateway migrates at start, under the advisory lock.
    expect(configOf(off).LINKGW_RECORDS_MIGRATE).toBe('auto');

    const owned = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'config.LINKGW_RECORDS_MIGRATE=auto']);
    expect(owned.status).not.toBe(0);
    expect(owned.out).toContain('config.LINKGW_RECORDS_MIGRATE is set by the chart');
    // The switch moved under migrations.job: the old key is refused rather than silently ignored.
    const old = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'migrations.enabled=false']);
    expect(old.status).not.toBe(0);
    expect(old.out).toContain("additional properties 'enabled' not allowed");
  });

  withHelm('sets LINKGW_RATE_LIMIT_REPLICAS from replicaCount, or from the HPA maximum', () => {
    const five = render(['--set', 'replicaCount=5']);
    expect(one(five, 'StatefulSet').spec.replicas).toBe(5);
    expect(configOf(five).LINKGW_RATE_LIMIT_REPLICAS).toBe('5');
    const hpa = render(['--set', 'autoscaling.enabled=true,autoscaling.minReplicas=2,autoscaling.maxReplicas=7']);
    expect(one(hpa, 'StatefulSet').spec.replicas).toBeUndefined();
    expect(one(hpa, 'HorizontalPodAutoscaler').spec).toMatchObject({ minReplicas: 2, maxReplicas: 7 });
    expect(configOf(hpa).LINKGW_RATE_LIMIT_REPLICAS).toBe('7');
    expect(configOf(render(['--set', 'rateLimit.replicas=4'])).LINKGW_RATE_LIMIT_REPLICAS).toBe('4');
  });

  withHelm('with production values: HPA, an L4 pass-through load balancer, ServiceMonitor, egress rules, separate database roles', () => {
    const objs = render(['-f', join(CHART, 'ci', 'production-values.yaml')]);
    const lb = one(objs, 'Service', 'linkgw-lb');
    expect(lb.spec).toMatchObject({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', loadBalancerClass: 'service.k8s.aws/nlb' });
    expect(lb.spec.ports).toEqual([{ name: 'grpc', port: 50051, targetPort: 'grpc', protocol: 'TCP' }]);
    expect(configOf(objs).LINKGW_RATE_LIMIT_REPLICAS).toBe('12');
    expect(one(objs, 'StatefulSet').spec.template.spec.containers[0].image).toMatch(/@sha256:[0-9a-f]{64}$/);
    const sm = one(objs, 'ServiceMonitor');
    expect(sm.spec.jobLabel).toBe('app.kubernetes.io/name');
    expect(sm.spec.selector.matchLabels['app.kubernetes.io/component']).toBe('metrics');
    expect(sm.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
    const np = one(objs, 'NetworkPolicy');
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec.egress[0].ports).toContainEqual({ port: 53, protocol: 'UDP' });
    expect(np.spec.egress).toHaveLength(4);
    expect(one(objs, 'Job').spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name).toBe('linkgw-records-owner');
    const cron = (name: string) => one(objs, 'CronJob', name).spec.jobTemplate.spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name;
    expect(cron('linkgw-records-verify')).toBe('linkgw-records-readonly');
    // Seal writes checkpoints (the runtime role); purge drops partitions (the schema owner).
    expect(cron('linkgw-records-seal')).toBe('linkgw-records-runtime');
    expect(cron('linkgw-records-purge')).toBe('linkgw-records-owner');
    expect(one(objs, 'CronJob', 'linkgw-records-verify').spec.timeZone).toBe('Asia/Tokyo');
    expect(find(objs, 'Secret')).toEqual([]);
  });

  withHelm('makes the Secrets and the policy ConfigMap from values, with a hook Secret for the migration', () => {
    const objs = render(['-f', join(CHART, 'ci', 'chart-secrets-values.yaml')]);
    const secrets = Object.fromEntries(find(objs, 'Secret').map((s: K8s) => [s.metadata.name, s]));
    expect(Object.keys(secrets).sort()).toEqual(['linkgw-keyring', 'linkgw-migrations', 'linkgw-records', 'linkgw-records-verify', 'linkgw-redis', 'linkgw-tls']);
    const decoded = (name: string, key: string) => Buffer.from(secrets[name].data[key], 'base64').toString('utf8');
    expect(decoded('linkgw-records', 'url')).toMatch(/^postgres:\/\/linkgw:/);
    expect(decoded('linkgw-migrations', 'url')).toBe(decoded('linkgw-records', 'url'));
    expect(secrets['linkgw-tls'].type).toBe('kubernetes.io/tls');
    expect(JSON.parse(decoded('linkgw-keyring', 'keyring.json'))).toMatchObject({ format: 'linkgw-keyring-v1' });
    // The hook Secret is created before the hook Job (lower weight) and goes with it.
    const hookSecret = secrets['linkgw-migrations'].metadata.annotations;
    const job = one(objs, 'Job', 'linkgw-migrate');
    expect(hookSecret['helm.sh/hook']).toBe(job.metadata.annotations['helm.sh/hook']);
    expect(Number(hookSecret['helm.sh/hook-weight'])).toBeLessThan(Number(job.metadata.annotations['helm.sh/hook-weight']));
    expect(job.spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name).toBe('linkgw-migrations');
    expect(secrets['linkgw-records'].metadata.annotations?.['helm.sh/hook']).toBeUndefined();
    expect(one(objs, 'ConfigMap', 'linkgw-policy').data).toEqual({ 'agencies.json': '{"agencies":[]}', 'legal-basis.json': '{"rows":[]}' });
    // Chart-made Secrets roll the pods when they change; the policy does not (it reloads in place).
    const annotations = one(objs, 'StatefulSet').spec.template.metadata.annotations;
    expect(Object.keys(annotations).sort()).toEqual(['checksum/config', 'checksum/keyring', 'checksum/records', 'checksum/redis', 'checksum/tls']);
    expect(one(objs, 'StatefulSet').spec.template.spec.volumes.find((v: K8s) => v.name === 'policy').configMap.name).toBe('linkgw-policy');
  });

  withHelm('refuses settings the chart owns, and a missing keyring, with a message that says what to set', () => {
    const simulate = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'config.LINKGW_SIMULATE=1']);
    expect(simulate.status).not.toBe(0);
    expect(simulate.out).toContain('config.LINKGW_SIMULATE is set by the chart');
    const other = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'config.NODE_OPTIONS=--inspect']);
    expect(other.status).not.toBe(0);
    // OpenTelemetry's own variables are welcome: tracing is configured with them.
    const otel = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'config.OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318']);
    expect(otel.status, otel.out).toBe(0);
    expect(otel.out).toContain('OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318"');
    const keyring = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'keyring.existingSecret=']);
    expect(keyring.status).not.toBe(0);
    expect(keyring.out).toContain('keyring: set keyring.existingSecret');
  });

  withHelm('checks values against values.schema.json: a misspelt key or a wrong URL scheme is refused', () => {
    const typo = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'keyrng.existingSecret=mine']);
    expect(typo.status).not.toBe(0);
    expect(typo.out).toContain("additional properties 'keyrng' not allowed");
    const url = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'records.url=mysql://db/linkgw']);
    expect(url.status).not.toBe(0);
    expect(url.out).toContain('/records/url');
    const replicas = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'replicaCount=0']);
    expect(replicas.status).not.toBe(0);
    // A misspelt setting is refused when rendering, not when the pod starts (exit 78, crash loop).
    const setting = helm(['template', 'linkgw', CHART, '--kube-version', KUBE_VERSION, '--set', 'config.LINKGW_LOG_LEVLE=debug']);
    expect(setting.status).not.toBe(0);
    expect(setting.out).toContain("additional properties 'LINKGW_LOG_LEVLE' not allowed");
  });

  it('lists in values.schema.json exactly the LINKGW_* settings the gateway knows', () => {
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as { properties: { config: { properties: Record<string, unknown>; additionalProperties: boolean } } };
    // When this fails after adding a setting, put its name in properties.config.properties.
    expect(Object.keys(schema.properties.config.properties).sort()).toEqual([...KNOWN_VARIABLES].sort());
    expect(schema.properties.config.additionalProperties).toBe(false);
  });

  withHelm('is the source of deploy/kubernetes/gateway.yaml (run deploy/kubernetes/generate.sh after changing the chart)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'linkgw-manifest-'));
    try {
      const out = join(dir, 'gateway.yaml');
      execFileSync(join(PACKAGE_ROOT, 'deploy', 'kubernetes', 'generate.sh'), [out], { stdio: 'pipe', env: { ...process.env, HELM: tool('helm') } });
      const committed = readFileSync(join(PACKAGE_ROOT, 'deploy', 'kubernetes', 'gateway.yaml'), 'utf8');
      expect(committed === readFileSync(out, 'utf8'), 'deploy/kubernetes/gateway.yaml is stale: run deploy/kubernetes/generate.sh').toBe(true);
      // No hooks in the plain manifests.
      expect(committed).not.toContain('helm.sh/hook');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
