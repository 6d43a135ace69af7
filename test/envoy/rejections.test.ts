// One bad object never takes the others down: a descriptor Envoy rejects (but our validator
// accepts) gets OXDS_ENVOY_REJECTED and is left out, the rest keeps serving, Envoy ACKs the next
// version; `validate --envoy` reports the same object before deploying.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { descriptorYaml, envoyTest, eventually, nodeConverged, startGateway } from '../helpers/envoy.js';
import { startHttpBackends, type HttpBackend } from '../helpers/http-backends.js';

const descriptor = descriptorYaml;

/**
 * A descriptor our own checks accept but Envoy refuses: an idle timeout of ~31,700 years is a valid
 * integer for us, a Duration out of Envoy's range for Envoy. `validate --envoy` and the server's
 * NACK feedback are what catch such a gap.
 */
const BAD_SPEC = 'clientConfig: {idleTimeout: 999999999999999}';

/**
 * For the server's NACK feedback: an Envoy whose bootstrap keeps a lower RE2 limit than ours (as a
 * hand-written bootstrap with Envoy's default would) refuses a regex our checks accept.
 */
const LOW_RE2_LIMIT = { 're2.max_program_size.error_level': 1000 };
const BIG_REGEX_SPEC = "matchingHeaders: {x-big: '[a-z]{1000}'}";

function goodAndBad(goodPort: number, badPort: number, badSpec: string): string {
  return (
    descriptor('good', `hosts: [good.oto.tools]\ntargets: [{url: "http://127.0.0.1:${goodPort}"}]`) +
    descriptor('bad', `hosts: [bad.oto.tools]\n${badSpec}\ntargets: [{url: "http://127.0.0.1:${badPort}"}]`)
  );
}

for (const delta of [true, false]) {
  const flavour = delta ? 'Delta' : 'SotW';
  envoyTest(
    `Envoy (${flavour}): a descriptor Envoy NACKs is left out with OXDS_ENVOY_REJECTED, the others keep serving`,
    async (t, bin) => {
      const [good, bad] = (await startHttpBackends(['good', 'bad'])) as [HttpBackend, HttpBackend];
      t.onTestFinished(async () => {
        await Promise.all([good.stop(), bad.stop()]);
      });
      const gw = await startGateway(t, bin, {
        files: { 'd.yaml': goodAndBad(good.port, bad.port, '') },
        delta,
        expectNacks: 1,
        bootstrap: { runtime: LOW_RE2_LIMIT },
      });
      assert.equal((await gw.request({ host: 'bad.oto.tools' })).status, 200);

      // The bad change: Envoy refuses the route configuration holding it (one NACK).
      await gw.update({ 'd.yaml': goodAndBad(good.port, bad.port, BIG_REGEX_SPEC) });
      const status = await eventually('the bad descriptor to get OXDS_ENVOY_REJECTED', () => {
        const st = gw.server.statuses().find((s) => s.name === 'bad');
        return st?.errors.some((e) => e.code === 'OXDS_ENVOY_REJECTED') ? st : undefined;
      });
      assert.equal(status.state, 'invalid');
      assert.match(status.errors[0]?.message ?? '', /Envoy rejected/);
      assert.equal(status.origin.file, 'd.yaml');
      // Only that object: the good one is still valid.
      assert.equal(gw.server.statuses().find((s) => s.name === 'good')?.state, 'valid');

      // Envoy ends with the next version ACKed (no NACK pending), serving the good descriptor.
      await gw.converged();
      assert.ok(nodeConverged(gw.server, gw.nodeId));
      await eventually('the bad host to be gone from Envoy', async () =>
        (await gw.request({ host: 'bad.oto.tools' })).status === 404 ? true : undefined,
      );
      const r = await gw.request({ host: 'good.oto.tools', path: '/still' });
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body) as { backend: string }).backend, 'good');
      assert.equal(
        Object.values(await gw.envoy.rejected()).reduce((a, b) => a + b, 0),
        1,
        'exactly one NACK: no loop',
      );

      // Fixed: it comes back as soon as it changes.
      await gw.update({ 'd.yaml': goodAndBad(good.port, bad.port, `matchingHeaders: {x-big: 'yes'}`) });
      await eventually('the fixed descriptor to serve again', async () =>
        (await gw.request({ host: 'bad.oto.tools', headers: { 'x-big': 'yes' } })).status === 200 ? true : undefined,
      );
      assert.equal(gw.server.statuses().find((s) => s.name === 'bad')?.state, 'valid');
    },
  );
}

function runValidate(bin: string, dir: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/src/cli.js', 'validate', '--config', dir, '--envoy', bin], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

envoyTest(
  'validate --envoy: what Envoy rejects is reported on its file and object; a clean config passes',
  async (t, bin) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-validate-envoy-'));
    t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'd.yaml'), goodAndBad(18081, 18082, BAD_SPEC));

    // Our own validator accepts it...
    const plain = spawnSync(process.execPath, ['dist/src/cli.js', 'validate', '--config', dir], { encoding: 'utf8' });
    assert.equal(plain.status, 0, plain.stdout + plain.stderr);
    // ...the real Envoy does not, and the error names the object.
    const bad = runValidate(bin, dir);
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    const lines = bad.stdout.split('\n').filter((l) => l.includes('OXDS_ENVOY_REJECTED'));
    // Envoy's message quotes the whole generated config, where both names appear: the bad object is
    // always among those named.
    assert.ok(
      lines.some(
        (l) =>
          l.startsWith('error OXDS_ENVOY_REJECTED d.yaml#1 ServiceDescriptor default/bad: Envoy rejected it: ') &&
          /duration out of range/.test(l),
      ),
      bad.stdout,
    );

    // The repository's examples (certificates, ext_authz, several listeners) pass.
    const clean = runValidate(bin, 'examples');
    assert.equal(clean.status, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /0 error\(s\).*checked by Envoy/);

    // A binary that does not run: a clear message, exit 2.
    const missing = spawnSync(
      process.execPath,
      ['dist/src/cli.js', 'validate', '--config', dir, '--envoy', path.join(dir, 'no-envoy')],
      { encoding: 'utf8' },
    );
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /--envoy: .*no-envoy does not run/);
  },
);
