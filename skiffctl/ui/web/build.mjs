// Builds the page into ../static, which the Go binary embeds (go:embed), and records
// the hash of the sources it was built from in ../static/sources.sha256: the Go test
// TestStaticIsFresh recomputes it (and, where esbuild is installed, rebuilds) and fails
// when the committed page is stale. Run through `make ui`.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

const out = process.argv[2] || '../static';
await build({
  entryPoints: ['src/app.js'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  legalComments: 'none',
  outfile: `${out}/app.js`,
});
copyFileSync('src/index.html', `${out}/index.html`);
copyFileSync('src/app.css', `${out}/app.css`);

// The hash: each source (package-lock.json, package.json, build.mjs, src/*), by path in
// byte order, as "PATH\n" followed by its bytes.
const files = ['build.mjs', 'package-lock.json', 'package.json', ...readdirSync('src').map((f) => `src/${f}`)].sort();
const h = createHash('sha256');
for (const f of files) {
  h.update(`${f}\n`);
  h.update(readFileSync(f));
}
writeFileSync(`${out}/sources.sha256`, h.digest('hex') + '\n');
