/**
 * A real Redis Cluster for tests: 3 masters and 3 replicas started from `redis-server` on free ports in a temp
 * directory, joined with `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`, then stopped and
 * removed by `stop()` (and killed on process exit should a test file crash first).
 *
 * Settings, and why:
 *   cluster-node-timeout 1500         a killed master is failed over in about 3 s (the default, 15 s, would
 *                                     make every failover test wait that long), with room left for a
 *                                     loaded CI machine's slow gossip
 *   cluster-require-full-coverage no  with a slot range down the other masters go on serving their slots, as
 *                                     docs/redis-cluster.md recommends; with `yes` every node answers
 *                                     CLUSTERDOWN (a test sets it to show that case too)
 *   no persistence                    tests need none, and the temp dir stays small
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ClusterNode {
  readonly port: number;
  readonly busPort: number;
  readonly dir: string;
  readonly process: ChildProcess;
  /** Cluster node id, known once the cluster is created. */
  id: string;
}

export interface NodeView {
  readonly id: string;
  readonly port: number;
  readonly role: 'master' | 'replica';
  /** For a replica: the id of its master. */
  readonly masterId: string | undefined;
  readonly failed: boolean;
  /** Slot ranges served (masters). */
  readonly slots: readonly [number, number][];
}

/** Reserves `n` distinct free loopback ports (held open together, so no two are the same, then released). */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      await new Promise<void>((r, j) => s.once('error', j).listen(0, '127.0.0.1', r));
      servers.push(s);
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** `redis-cli -p port …args`, its stdout. */
export async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not yet
    }
    if (Date.now() - t0 > ms) throw new Error(`redis cluster: ${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const live = new Set<RedisCluster>();
process.once('exit', () => {
  for (const c of live) {
    for (const n of c.nodes) if (n.process.exitCode === null) n.process.kill('SIGKILL');
    rmSync(c.dir, { recursive: true, force: true });
  }
});

export class RedisCluster {
  readonly dir: string;
  readonly nodes: ClusterNode[];
  readonly #killed = new Set<number>();
  /** Slot ranges each killed master served when it was killed. */
  readonly #served = new Map<number, readonly [number, number][]>();

  private constructor(dir: string, nodes: ClusterNode[]) {
    this.dir = dir;
    this.nodes = nodes;
  }

  /** Starts 6 nodes, creates the cluster and waits until every node says it is ok and every replica is synced. */
  static async start(opts: { nodeTimeoutMs?: number } = {}): Promise<RedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'linkgw-redis-cluster-'));
    const ports = await freePorts(12);
    const nodes: ClusterNode[] = [];
    const cluster = new RedisCluster(dir, nodes);
    live.add(cluster);
    try {
      for (let i = 0; i < 6; i++) {
        const port = ports[2 * i]!;
        const busPort = ports[2 * i + 1]!;
        const nodeDir = join(dir, String(port));
        mkdirSync(nodeDir);
        const conf = [
          `port ${port}`,
          `cluster-port ${busPort}`,
          'bind 127.0.0.1',
          'cluster-enabled yes',
          'cluster-config-file nodes.conf',
          `cluster-node-timeout ${opts.nodeTimeoutMs ?? 1500}`,
          'cluster-require-full-coverage no',
          'save ""',
          'appendonly no',
          `dir ${nodeDir}`,
          `logfile ${join(nodeDir, 'redis.log')}`,
        ].join('\n');
        writeFileSync(join(nodeDir, 'redis.conf'), conf + '\n');
        const p = spawn('redis-server', [join(nodeDir, 'redis.conf')], { stdio: 'ignore' });
        p.on('error', () => undefined);
        nodes.push({ port, busPort, dir: nodeDir, process: p, id: '' });
      }
      await Promise.all(nodes.map((n) => waitFor(`node ${n.port} answering`, async () => (await cli(n.port, 'ping')).trim() === 'PONG', 10_000)));
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
      await cluster.waitHealthy(30_000);
      const views = await cluster.view();
      for (const n of nodes) n.id = views.find((v) => v.port === n.port)!.id;
      return cluster;
    } catch (e) {
      await cluster.stop();
      throw e;
    }
  }

  /** The URL the gateway takes: every node as a seed. */
  get url(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  alive(): ClusterNode[] {
    return this.nodes.filter((n) => !this.#killed.has(n.port));
  }

  /** The cluster as one live node sees it (CLUSTER NODES). */
  async view(from = this.alive()[0]!): Promise<NodeView[]> {
    const text = await cli(from.port, 'cluster', 'nodes');
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const f = line.split(' ');
        const flags = f[2]!.split(',');
        const port = Number(f[1]!.split('@')[0]!.split(':').pop());
        const slots: [number, number][] = [];
        for (const s of f.slice(8)) {
          if (s.startsWith('[')) continue; // a slot being migrated
          const [a, b] = s.split('-').map(Number);
          slots.push([a!, b ?? a!]);
        }
        return {
          id: f[0]!,
          port,
          role: flags.includes('master') ? 'master' : 'replica',
          masterId: f[3] === '-' ? undefined : f[3],
          failed: flags.includes('fail') || flags.includes('fail?'),
          slots,
        } as NodeView;
      });
  }

  /** The slot of a key (CLUSTER KEYSLOT). */
  async slotOf(key: string): Promise<number> {
    return Number((await cli(this.alive()[0]!.port, 'cluster', 'keyslot', key)).trim());
  }

  /** The live node that is master of a slot now. */
  async masterOfSlot(slot: number): Promise<ClusterNode> {
    const v = await this.view();
    const m = v.find((x) => x.role === 'master' && !x.failed && x.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!m) throw new Error(`redis cluster: no master serves slot ${slot}`);
    return this.nodes.find((n) => n.port === m.port)!;
  }

  /** The replicas of a master. */
  async replicasOf(master: ClusterNode): Promise<ClusterNode[]> {
    const v = await this.view();
    return v.filter((x) => x.masterId === master.id).map((x) => this.nodes.find((n) => n.port === x.port)!);
  }

  /** Masters other than these. */
  async mastersExcept(...not: ClusterNode[]): Promise<ClusterNode[]> {
    const v = await this.view();
    return v
      .filter((x) => x.role === 'master' && !x.failed && !not.some((n) => n.port === x.port))
      .map((x) => this.nodes.find((n) => n.port === x.port)!);
  }

  /** SIGKILL: the node is gone at once, as in a crash (no goodbye to clients or to the cluster). */
  async kill(node: ClusterNode): Promise<void> {
    if (this.#killed.has(node.port)) return;
    if (this.alive().length > 1) {
      const me = (await this.view().catch(() => [])).find((x) => x.port === node.port);
      if (me?.slots.length) this.#served.set(node.port, me.slots);
    }
    this.#killed.add(node.port);
    if (node.process.exitCode !== null || node.process.signalCode !== null) return;
    const exited = new Promise((r) => node.process.once('exit', r));
    node.process.kill('SIGKILL');
    await exited;
  }

  /** Waits until every live node sees a live replica of `master` (killed) serving its slots; returns it. */
  async waitFailover(master: ClusterNode, ms = 30_000): Promise<ClusterNode> {
    const slot = this.#served.get(master.port)?.[0]?.[0];
    if (slot === undefined) throw new Error('redis cluster: waitFailover is for a killed master');
    let heir: ClusterNode | undefined;
    await waitFor(`failover of ${master.port}`, async () => {
      for (const n of this.alive()) {
        const v = await this.view(n);
        if (!v.find((x) => x.port === master.port)?.failed) return false;
        const m = v.find((x) => x.role === 'master' && !x.failed && x.slots.some(([a, b]) => slot >= a && slot <= b));
        if (!m || this.#killed.has(m.port)) return false;
        heir = this.nodes.find((o) => o.port === m.port);
      }
      return true;
    }, ms);
    return heir!;
  }

  /** Waits until every live node reports cluster_state:ok, every slot is served, and every replica is synced. */
  async waitHealthy(ms = 30_000): Promise<void> {
    await waitFor('cluster ok', async () => {
      for (const n of this.alive()) {
        const info = await cli(n.port, 'cluster', 'info');
        if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) return false;
        const repl = await cli(n.port, 'info', 'replication');
        if (/role:slave/.test(repl) && !/master_link_status:up/.test(repl)) return false;
      }
      return true;
    }, ms);
  }

  /** Waits until the live nodes agree that these nodes have failed (so the cluster routes around them). */
  async waitFailed(nodes: ClusterNode[], ms = 30_000): Promise<void> {
    await waitFor('nodes marked failed', async () => {
      for (const n of this.alive()) {
        const v = await this.view(n);
        for (const dead of nodes) if (!v.find((x) => x.port === dead.port)?.failed) return false;
      }
      return true;
    }, ms);
  }

  /** Kills every node and removes the directory. Safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n)));
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
