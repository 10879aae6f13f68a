import { readFile } from 'node:fs/promises';

/** The parts of a V8 .cpuprofile (as written by node --cpu-prof) read here. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  /** Microseconds on the system's monotonic clock, as process.hrtime reads it. */
  startTime: number;
  samples: number[];
  /** Microseconds between consecutive samples. */
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  selfMs: number;
  /** Of all sampled time except idle. */
  percent: number;
}

export interface ProfileSummary {
  file: string;
  /** Time on CPU within the window. */
  busyMs: number;
  topFunctions: (SelfTime & { package: string; location: string })[];
  packages: SelfTime[];
}

/**
 * Self time by function and by package (node_modules name, `node`, `clerk-sync`, or V8's own),
 * counting only the samples taken within `window` (monotonic microseconds): the drain, without
 * the process's start-up and shutdown.
 */
export async function summarizeProfile(
  file: string,
  window: { from: number; to: number },
  top = 10,
): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byFunction = new Map<
    string,
    { name: string; package: string; location: string; us: number }
  >();
  const byPackage = new Map<string, number>();
  let busyUs = 0;
  let sampledAt = profile.startTime;

  profile.samples.forEach((nodeId, index) => {
    sampledAt += profile.timeDeltas[index] ?? 0;
    const frame = frames.get(nodeId);
    const us = profile.timeDeltas[index + 1] ?? 0;
    if (sampledAt < window.from || sampledAt > window.to) return;
    if (!frame || frame.functionName === '(idle)') return;
    busyUs += us;
    const pkg = packageOf(frame.url, frame.functionName);
    const location = frame.url ? `${shortPath(frame.url)}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName} ${location}`;
    const entry = byFunction.get(key) ?? {
      name: frame.functionName || '(anonymous)',
      package: pkg,
      location,
      us: 0,
    };
    entry.us += us;
    byFunction.set(key, entry);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
  });

  const percent = (us: number) => (busyUs > 0 ? (100 * us) / busyUs : 0);
  return {
    file,
    busyMs: busyUs / 1_000,
    topFunctions: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(({ us, ...entry }) => ({ ...entry, selfMs: us / 1_000, percent: percent(us) })),
    packages: [...byPackage.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, selfMs: us / 1_000, percent: percent(us) })),
  };
}

function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const [scopeOrName = '', name = ''] = url.slice(modules + 'node_modules/'.length).split('/');
    return scopeOrName.startsWith('@') ? `${scopeOrName}/${name}` : scopeOrName;
  }
  return url.includes('/src/') ? 'clerk-sync' : shortPath(url);
}

function shortPath(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('node_modules/');
  if (modules >= 0) return path.slice(modules + 'node_modules/'.length);
  const src = path.lastIndexOf('/src/');
  return src >= 0 ? path.slice(src + 1) : path;
}

/** The top functions under their packages, packages by their total self time. */
export function formatProfile(summary: ProfileSummary): string {
  const lines = [
    `worker CPU profile ${summary.file}, the drain only: ${Math.round(summary.busyMs)} ms on CPU (idle excluded)`,
    'self time by package, with the top 10 functions by self time under theirs:',
  ];
  const shown = summary.packages.filter(
    (pkg, index) => index < 10 || summary.topFunctions.some((fn) => fn.package === pkg.name),
  );
  for (const pkg of shown) {
    lines.push(`  ${pkg.percent.toFixed(1).padStart(5)}%  ${pkg.name}`);
    for (const fn of summary.topFunctions.filter((entry) => entry.package === pkg.name)) {
      lines.push(`           ${fn.percent.toFixed(1).padStart(5)}%  ${fn.name}  ${fn.location}`);
    }
  }
  return lines.join('\n');
}
