/**
 * Issue 9, item 3: readiness tells the truth. While commits fail fast (the database gone, the disk full), not
 * only while one hangs, /readyz answers 503 and grpc.health.v1 NOT_SERVING; when the store comes back they turn
 * ready again by themselves, with no request needed (the writer tries the store). The database is cut with a
 * TCP proxy the test controls; the full disk is a small tmpfs.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { status, Client, Metadata, type ServiceError } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as Serving } from '../../src/gen/grpc/health/v1/health_pb.js';
import { clientOptionsFor } from '../../src/grpc/channel-options.js';
import { channelCredentials } from '../../src/grpc/tls.js';
import { pkiFiles } from '../../src/pki/dev-pki.js';
import { createPgSchema, startHarness, statusOf, type Harness } from '../helpers/gateway-harness.js';
import { PgProxy } from '../helpers/pg-proxy.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const run = promisify(execFile);
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** /readyz: status and body. */
async function readyz(h: Harness): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://${h.gw.opsAddress}/readyz`);
  return { status: r.status, body: await r.text() };
}

/** grpc.health.v1 Check of the whole server, over the agency port. */
function healthOf(h: Harness): () => Promise<Serving> {
  const f = pkiFiles(join(h.dataDir, 'pki'));
  const client = new Client(h.gw.address, channelCredentials({ ca: f.caCert, cert: f.agencyCert('pension'), key: f.agencyKey('pension') }), clientOptionsFor(h.gw.address));
  cleanups.push(() => client.close());
  const body = Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: '' })));
  return () =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, body, new Metadata(), { deadline: Date.now() + 5000 }, (e: ServiceError | null, res?: Buffer) =>
        e ? reject(e) : resolve(fromBinary(HealthCheckResponseSchema, res!).status),
      ),
    );
}

describe('readiness', () => {
  it('is 503 and NOT_SERVING while the database is gone, and comes back by itself', async () => {
    const db = await createPgSchema();
    cleanups.push(db.drop);
    const proxy = new PgProxy();
    await proxy.restore();
    cleanups.push(() => proxy.close());
    const h = await startHarness({ pgUrl: proxy.url(db.url), env: { LINKGW_RECORD_STORE_TIMEOUT_MS: '1000', LINKGW_RECORD_TIMEOUT_MS: '5000' } });
    cleanups.push(() => h.stop());
    const health = healthOf(h);
    const pension = h.client('pension');
    const [a, b, c] = population(3, 41);
    await pension.issueCode(a!);
    expect((await readyz(h)).status).toBe(200);
    expect(await health()).toBe(Serving.SERVING);

    await proxy.cut();
    const t0 = Date.now();
    const failed = await statusOf(pension.issueCode(b!));
    expect(failed.code).toBe(status.UNAVAILABLE);
    expect(failed.details).toMatch(/nothing was released/);
    // Failing fast (nothing to wait for), not at the record timeout.
    expect(Date.now() - t0).toBeLessThan(4000);
    const down = await readyz(h);
    expect(down.status).toBe(503);
    expect(down.body).toMatch(/not ready: access record commits fail/);
    expect(await health()).toBe(Serving.NOT_SERVING);
    // It stays so without traffic while the database stays away (the writer's tries keep failing).
    await new Promise((r) => setTimeout(r, 2500));
    expect((await readyz(h)).status).toBe(503);

    await proxy.restore();
    // No request: the writer finds the store back by itself.
    await until(async () => (await readyz(h)).status === 200, 10_000);
    expect(await health()).toBe(Serving.SERVING);
    await expect(pension.issueCode(c!)).resolves.toMatchObject({ recordId: expect.any(String) });
  });

  const canMount = process.getuid?.() === 0;
  // A full disk needs a small file system of the test's own: a tmpfs, which only root may mount.
  it.skipIf(!canMount)('is 503 while the SQLite disk is full, and comes back by itself when space is freed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'linkgw-full-'));
    await run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
    cleanups.push(async () => {
      await run('umount', ['-l', dir]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });
    const h = await startHarness({ dataDir: join(dir, 'data'), env: { LINKGW_RECORD_TIMEOUT_MS: '5000', LINKGW_DEV_CA_DIR: join(dir, 'ca') } });
    cleanups.push(() => h.stop());
    const pension = h.client('pension');
    const numbers = population(20, 42);
    await pension.issueCode(numbers[0]!);
    expect((await readyz(h)).status).toBe(200);

    // Fill the file system to the last byte.
    for (let size = 4 << 20; size >= 512; size >>= 1) {
      try {
        writeFileSync(join(dir, `filler-${size}`), Buffer.alloc(size));
      } catch {
        rmSync(join(dir, `filler-${size}`), { force: true });
      }
    }
    let refused = false;
    for (const n of numbers.slice(1, 10)) {
      const s = await statusOf(pension.issueCode(n)).catch(() => undefined);
      if (s?.code === status.UNAVAILABLE) {
        refused = true;
        break;
      }
    }
    expect(refused).toBe(true);
    const full = await readyz(h);
    expect(full.status).toBe(503);
    expect(full.body).toMatch(/SQLITE_FULL|disk is full/);

    for (let size = 4 << 20; size >= 512; size >>= 1) rmSync(join(dir, `filler-${size}`), { force: true });
    await until(async () => (await readyz(h)).status === 200, 10_000);
    await expect(pension.issueCode(numbers[15]!)).resolves.toMatchObject({ recordId: expect.any(String) });
  });
});
