import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import { QueueKeys } from 'bullmq';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { TEST_SECRET } from '../support/svix.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BASE = `${ROOT}deploy/kubernetes/base/`;

/** The schema of every kind the manifests use: Kubernetes' own, and KEDA's CRDs. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'batch/v1/Job': Job,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
};

/** Parsed YAML, read field by field: its shape is what the schema test checks. */
// biome-ignore lint/suspicious/noExplicitAny: see above
type Parsed = any;
type Manifest = {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: Parsed;
  spec: Parsed;
  data?: Parsed;
};

const resourceFiles = readdirSync(BASE).filter(
  (file) => file.endsWith('.yaml') && file !== 'kustomization.yaml',
);
const manifests: Manifest[] = resourceFiles.flatMap((file) =>
  parseAllDocuments(readFileSync(BASE + file, 'utf8')).map((document) => ({
    file,
    ...(document.toJS() as Omit<Manifest, 'file'>),
  })),
);

function find(kind: string, name: string): Manifest {
  const manifest = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!manifest) throw new Error(`no ${kind} ${name} in ${BASE}`);
  return manifest;
}

const configMap = find('ConfigMap', 'clerk-sync').data as Record<string, string>;
const receiver = find('Deployment', 'clerk-sync-receiver');
const worker = find('Deployment', 'clerk-sync-worker');
const migration = find('Job', 'clerk-sync-migrate');
const workloads = [receiver, worker, migration];
const containerOf = (workload: Manifest): Parsed => workload.spec.template.spec.containers[0];
const containerPort = (workload: Manifest, name: string): number =>
  containerOf(workload).ports.find((port: { name: string }) => port.name === name)?.containerPort;

describe('Kubernetes manifests (deploy/kubernetes/base)', () => {
  it('are each valid against the Kubernetes or KEDA schema of their kind', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(resourceFiles.length);
    for (const manifest of manifests) {
      const { file, ...resource } = manifest;
      const Model = MODELS[`${resource.apiVersion}/${resource.kind}`];
      expect(
        Model,
        `${file}: ${resource.apiVersion} ${resource.kind} has no schema here`,
      ).toBeDefined();
      expect(
        () => new (Model as NonNullable<typeof Model>)(resource as never).validate(),
        file,
      ).not.toThrow();
    }
  });

  it('rejects a manifest that breaks its schema (the check is not a no-op)', () => {
    const broken = structuredClone(receiver);
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'three thousand';
    expect(() => new Deployment(broken as never).validate()).toThrow();
    const brokenScaler = structuredClone(find('ScaledObject', 'clerk-sync-worker'));
    delete brokenScaler.spec.scaleTargetRef;
    expect(() => new ScaledObject(brokenScaler as never).validate()).toThrow();
  });

  it("kustomization.yaml lists exactly the directory's resource files", () => {
    const kustomization = parseAllDocuments(
      readFileSync(`${BASE}kustomization.yaml`, 'utf8'),
    )[0]?.toJS();
    expect([...kustomization.resources].sort()).toEqual([...resourceFiles].sort());
  });

  it('selectors, Services, the PodDisruptionBudget and the autoscalers point at the right pods', () => {
    for (const deployment of [receiver, worker]) {
      expect(deployment.spec.template.metadata.labels).toMatchObject(
        deployment.spec.selector.matchLabels,
      );
    }
    expect(receiver.spec.selector.matchLabels).not.toEqual(worker.spec.selector.matchLabels);
    const service = find('Service', 'clerk-sync-receiver');
    expect(service.spec.selector).toEqual(receiver.spec.selector.matchLabels);
    expect(containerPort(receiver, service.spec.ports[0].targetPort)).toBeDefined();
    expect(find('PodDisruptionBudget', 'clerk-sync-receiver').spec.selector).toEqual(
      receiver.spec.selector,
    );
    expect(find('HorizontalPodAutoscaler', 'clerk-sync-receiver').spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: receiver.metadata.name,
    });
    const scaler = find('ScaledObject', 'clerk-sync-worker');
    expect(scaler.spec.scaleTargetRef).toMatchObject({
      kind: 'Deployment',
      name: worker.metadata.name,
    });
    find('TriggerAuthentication', scaler.spec.triggers[0].authenticationRef.name);
  });

  it('ports agree with the configuration, the probes and the scrape annotations', () => {
    expect(containerPort(receiver, 'http')).toBe(Number(configMap.PORT));
    expect(containerPort(receiver, 'metrics')).toBe(Number(configMap.METRICS_PORT));
    expect(containerPort(worker, 'metrics')).toBe(Number(configMap.WORKER_METRICS_PORT));
    for (const [deployment, probePort] of [
      [receiver, 'http'],
      [worker, 'metrics'],
    ] as const) {
      const container = containerOf(deployment);
      expect(container.livenessProbe.httpGet).toEqual({ path: '/livez', port: probePort });
      expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: probePort });
      const annotations = deployment.spec.template.metadata.annotations;
      expect(Number(annotations['prometheus.io/port'])).toBe(containerPort(deployment, 'metrics'));
      expect(annotations['prometheus.io/path']).toBe('/metrics');
    }
  });

  it('the ConfigMap is a valid configuration whose queue is the list KEDA scales on', () => {
    const config = loadConfig({
      ...configMap,
      DATABASE_URL: 'postgresql://app@db.internal:5432/clerk_sync',
      REDIS_URL: 'redis://redis.internal:6379',
      CLERK_WEBHOOK_SIGNING_SECRET: TEST_SECRET,
    });
    expect(config.queueName).toBe(loadConfig({}).queueName);
    expect(config.queuePrefix).toBe(loadConfig({}).queuePrefix);
    const trigger = find('ScaledObject', 'clerk-sync-worker').spec.triggers[0];
    expect(trigger.type).toBe('redis');
    expect(trigger.metadata.listName).toBe(
      new QueueKeys(config.queuePrefix).toKey(config.queueName, 'wait'),
    );
  });

  it('runs the same commands as the npm scripts, as the image user, on a read-only root', () => {
    const scripts = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')).scripts;
    expect(containerOf(receiver).command.join(' ')).toBe(scripts['start:receiver']);
    expect(containerOf(worker).command.join(' ')).toBe(scripts['start:worker']);
    expect(readFileSync(`${ROOT}Dockerfile`, 'utf8')).toMatch(/^USER node$/m);
    for (const workload of workloads) {
      const pod = workload.spec.template.spec;
      // The node image's `node` user.
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
      const container = containerOf(workload);
      expect(container.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      const tmp = container.volumeMounts.find(
        (mount: { mountPath: string }) => mount.mountPath === '/tmp',
      );
      expect(
        pod.volumes.find((volume: { name: string }) => volume.name === tmp?.name)?.emptyDir,
      ).toBeDefined();
      const { requests, limits } = container.resources;
      expect(Object.keys(requests).sort()).toEqual(['cpu', 'memory']);
      expect(Object.keys(limits).sort()).toEqual(['cpu', 'memory']);
      expect(pod.terminationGracePeriodSeconds ?? 30).toBeGreaterThan(0);
    }
  });

  it('takes every secret from the Secret clerk-sync, with keys the deployment guide documents', () => {
    const guide = readFileSync(`${ROOT}docs/kubernetes.md`, 'utf8');
    const keys = new Set<string>();
    for (const workload of workloads) {
      for (const variable of containerOf(workload).env) {
        const ref = variable.valueFrom?.secretKeyRef;
        expect(ref, `${variable.name} must come from the Secret`).toBeDefined();
        expect(ref.name).toBe('clerk-sync');
        keys.add(ref.key);
      }
    }
    for (const ref of find('TriggerAuthentication', 'clerk-sync-redis').spec.secretTargetRef) {
      expect(ref.name).toBe('clerk-sync');
      keys.add(ref.key);
    }
    for (const key of keys) expect(guide).toContain(`--from-literal=${key}=`);
    const migrationEnv = Object.fromEntries(
      containerOf(migration).env.map(
        (v: { name: string; valueFrom: { secretKeyRef: { key: string } } }) => [
          v.name,
          v.valueFrom.secretKeyRef.key,
        ],
      ),
    );
    expect(migrationEnv.MIGRATION_DATABASE_URL).toBe('MIGRATION_DATABASE_URL');
  });
});
