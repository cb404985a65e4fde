// Keeps package-lock.json usable by `npm ci` on every platform.
//
// The registry these machines reach serves the platform binaries of deno, rollup and the
// Supabase CLI for linux-x64 only, so `npm install` here leaves the other platforms'
// optional packages out of the lockfile, and `npm ci` then refuses the lockfile as out of
// sync. This adds each missing optional platform package with its os/cpu (and libc), so
// npm ci skips it on other platforms exactly as it would with a complete lockfile, and
// fetches it where it matches. Run after changing dependencies: `npm run lock:platforms`.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages;

const OS = {
  darwin: 'darwin',
  linux: 'linux',
  win32: 'win32',
  windows: 'win32',
  android: 'android',
  freebsd: 'freebsd',
  openbsd: 'openbsd',
  openharmony: 'openharmony',
};
const CPU = {
  arm64: 'arm64',
  x64: 'x64',
  arm: 'arm',
  ia32: 'ia32',
  loong64: 'loong64',
  ppc64: 'ppc64',
  riscv64: 'riscv64',
  s390x: 's390x',
};

function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.map((p) => OS[p]).find(Boolean);
  const cpu = parts.map((p) => (p === 'gnueabihf' || p === 'musleabihf' ? null : CPU[p])).find(
    Boolean,
  );
  if (!os || !cpu) return null;
  const libc = parts.includes('musl') || parts.includes('musleabihf')
    ? 'musl'
    : parts.includes('gnu') || parts.includes('glibc') || parts.includes('gnueabihf')
    ? 'glibc'
    : null;
  return { os, cpu, libc };
}

let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (packages[key] || packages[`${path}/node_modules/${dep}`]) continue;
    const platform = platformOf(dep);
    if (!platform) throw new Error(`${dep}: cannot tell its platform from its name`);
    packages[key] = {
      version,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      os: [platform.os],
      cpu: [platform.cpu],
      ...(platform.libc ? { libc: [platform.libc] } : {}),
    };
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(packages).sort((
    [a],
    [b],
  ) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)),
);
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`lock-platforms: ${added} optional platform package(s) added`);
