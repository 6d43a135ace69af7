// The README quickstart: `npm run demo` (here its built script, every port free) prints curl lines;
// each is run with the real curl and prints the status codes the demo promises.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { envoyTest, eventually } from '../helpers/envoy.js';

/** `# what: expected` followed by the command, as the demo prints them. */
function curlLines(out: string): { what: string; expect: string; cmd: string }[] {
  const lines = out.split('\n');
  const found: { what: string; expect: string; cmd: string }[] = [];
  lines.forEach((l, i) => {
    const m = /^# (.*): ([0-9 ]+)$/.exec(l);
    const cmd = lines[i + 1];
    if (m?.[1] !== undefined && m[2] !== undefined && cmd !== undefined && /^(curl|for) /.test(cmd))
      found.push({ what: m[1], expect: m[2], cmd });
  });
  return found;
}

envoyTest(
  'npm run demo: every curl line it prints works (public, apikey, 400/401 without a valid key, 429 after the quota)',
  async (t) => {
    if (spawnSync('curl', ['--version'], { stdio: 'ignore' }).status !== 0) {
      if (process.env.CI === 'true') assert.fail('CI=true and curl is missing (.ci/run installs it)');
      t.skip('curl missing: apt-get install curl');
      return;
    }
    const child = spawn(process.execPath, ['dist/scripts/demo.js', '--free-ports'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    let exit: number | null | undefined;
    const exited = new Promise<void>((r) => child.once('exit', (c) => ((exit = c), r())));
    t.onTestFinished(async () => {
      if (exit === undefined) {
        child.kill('SIGTERM');
        await exited;
      }
    });
    await eventually(
      'the demo to be ready',
      () => {
        if (exit !== undefined) throw new Error(`demo exited with ${String(exit)}: ${err}`);
        return out.includes('Demo ready.') ? true : undefined;
      },
      90_000,
    );

    const lines = curlLines(out);
    assert.deepEqual(
      lines.map((l) => l.expect),
      ['200', '200', '200', '400', '401', '200 200 200 429'],
      out,
    );
    for (const l of lines) {
      const r = spawnSync('bash', ['-c', l.cmd], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.stdout.trim().split(/\s+/).join(' '), l.expect, `${l.what}: ${l.cmd}\n${r.stderr}`);
    }
    // Ctrl-C (SIGTERM here) stops everything cleanly.
    child.kill('SIGTERM');
    await exited;
    assert.equal(exit, 0, err);
  },
);
