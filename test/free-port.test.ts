// The test helpers' free ports: taken below the kernel's ephemeral range (where port-0 listeners and
// outgoing connections cannot take them meanwhile), never handed out twice, and bindable when
// handed out.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ephemeralRange, freePort } from './helpers/redis.js';

test('freePort: 200 distinct ports, below the ephemeral range, each bindable on loopback', async () => {
  const ports: number[] = [];
  for (let i = 0; i < 200; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, ports.length, 'a port was handed out twice');
  const [low] = ephemeralRange();
  if (low > 2100) {
    for (const p of ports) assert.ok(p >= 1024 && p < low, `port ${p} is not in 1024..${low - 1}`);
  }
  // Hold them all at once: each one can be bound, and none collides with another.
  const servers = await Promise.all(
    ports.map(
      (p) =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(p, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});
